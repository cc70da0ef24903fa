package sqstest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/queuer/sqstest"
)

func TestServerSendsReceivesAndRestartsEmpty(t *testing.T) {
	t.Parallel()
	srv := sqstest.Start(t)
	require.True(t, strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:"), srv.Endpoint)
	url := srv.CreateQueue(t, "jobs", map[string]string{"VisibilityTimeout": "5"})
	require.True(t, strings.HasPrefix(url, srv.Endpoint+"/"), url)
	require.Equal(t, "arn:aws:sqs:us-east-1:123456789012:jobs", srv.QueueARN(t, url))

	c := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("hello")})
	require.NoError(t, err)
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
	require.NoError(t, err)
	require.Len(t, out.Messages, 1)
	require.Equal(t, "hello", aws.ToString(out.Messages[0].Body))

	srv.Stop(t)
	_, err = c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("jobs")})
	require.Error(t, err, "a stopped server does not answer")

	srv.Restart(t)
	_, err = c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("jobs")})
	require.Error(t, err, "a restarted server has no queues")
	require.Equal(t, url, srv.CreateQueue(t, "jobs", nil))
}
