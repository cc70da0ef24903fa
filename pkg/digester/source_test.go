package digester

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// dirFixture is a folder with files, sub-folders and links of every kind.
func dirFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"AWSLogs/a.log":       "a",
		"AWSLogs/sub/b.log":   "b",
		"AWSLogs/sub/c/d.log": "d",
	})
	outside := filepath.Join(t.TempDir(), "secret.log")
	require.NoError(t, os.WriteFile(outside, []byte("secret"), 0o644))
	require.NoError(t, os.Symlink("sub", filepath.Join(dir, "AWSLogs", "linked")))
	require.NoError(t, os.Symlink("a.log", filepath.Join(dir, "AWSLogs", "alias.log")))
	require.NoError(t, os.Symlink("nowhere.log", filepath.Join(dir, "AWSLogs", "broken.log")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "AWSLogs", "escape.log")))
	require.NoError(t, os.Symlink(filepath.Dir(outside), filepath.Join(dir, "AWSLogs", "escapedir")))
	return dir
}

func TestDirList(t *testing.T) {
	t.Parallel()
	dir := dirFixture(t)
	tests := []struct {
		prefix  string
		want    []string
		wantErr error
	}{
		{prefix: "", want: []string{"AWSLogs/"}},
		{prefix: "AWSLogs/", want: []string{
			"AWSLogs/a.log", "AWSLogs/alias.log", "AWSLogs/broken.log", "AWSLogs/escape.log",
			// A link leading out of the folder is a file (that cannot be opened),
			// never a folder to walk into.
			"AWSLogs/escapedir", "AWSLogs/linked/", "AWSLogs/sub/",
		}},
		{prefix: "AWSLogs/sub/", want: []string{"AWSLogs/sub/b.log", "AWSLogs/sub/c/"}},
		{prefix: "AWSLogs/linked/", want: []string{"AWSLogs/linked/b.log", "AWSLogs/linked/c/"}},
		{prefix: "AWSLogs/missing/", want: nil},
		{prefix: "AWSLogs", wantErr: types.ErrInvalidInput},
		{prefix: "../", wantErr: types.ErrInvalidInput},
		{prefix: "AWSLogs/../../", wantErr: types.ErrInvalidInput},
		{prefix: "/etc/", wantErr: types.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			t.Parallel()
			got, err := Dir{Path: dir}.List(context.Background(), tt.prefix)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			slices.Sort(got)
			require.Equal(t, tt.want, got)
		})
	}
	_, err := Dir{Path: filepath.Join(dir, "missing")}.List(context.Background(), "")
	require.ErrorIs(t, err, fs.ErrNotExist, "a missing root is an error, not an empty folder")
}

func TestDirOpen(t *testing.T) {
	t.Parallel()
	dir := dirFixture(t)
	tests := []struct {
		key     string
		want    string
		wantErr error
		wantIn  string
	}{
		{key: "AWSLogs/a.log", want: "a"},
		{key: "AWSLogs/sub/c/d.log", want: "d"},
		{key: "AWSLogs/alias.log", want: "a"},
		{key: "AWSLogs/linked/b.log", want: "b"},
		{key: "AWSLogs/missing.log", wantErr: types.ErrNotFound},
		{key: "AWSLogs/broken.log", wantErr: types.ErrNotFound},
		{key: "AWSLogs/sub", wantIn: "not a regular file"},
		{key: "AWSLogs/escape.log", wantIn: "escape.log"},
		{key: "AWSLogs/escapedir/secret.log", wantIn: "secret.log"},
		{key: "../secret.log", wantErr: types.ErrInvalidInput},
		{key: "/etc/hostname", wantErr: types.ErrInvalidInput},
		{key: "", wantErr: types.ErrInvalidInput},
		{key: "AWSLogs/", wantErr: types.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			rc, err := Dir{Path: dir}.Open(context.Background(), tt.key)
			if tt.want == "" {
				require.Error(t, err)
				require.Nil(t, rc)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				}
				require.Contains(t, err.Error(), tt.wantIn)
				return
			}
			require.NoError(t, err)
			b, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.Equal(t, tt.want, string(b))
		})
	}
}

// uploadTree puts every file under dir into bucket under prefix, as they are.
func uploadTree(t *testing.T, client *s3.Client, bucket, prefix, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		_, err = client.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(bucket),
			Key:    aws.String(prefix + filepath.ToSlash(rel)),
			Body:   bytes.NewReader(b),
		})
		n++
		return err
	})
	require.NoError(t, err)
	return n
}

func putObject(t *testing.T, client *s3.Client, bucket, key, content string) {
	t.Helper()
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(content),
	})
	require.NoError(t, err)
}

// TestBucket runs the Bucket source against a real S3 server (Versity S3
// Gateway) holding the checked-in sample.
func TestBucket(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	wantDigest, err := os.ReadFile("../../testdata/flowlogs/expected-digest.txt")
	require.NoError(t, err)

	t.Run("sample digest, paginated listing, prefix", func(t *testing.T) {
		t.Parallel()
		bucket := srv.NewBucket(t)
		require.Positive(t, uploadTree(t, client, bucket, "mirror/flows/", "../../testdata/flowlogs"))
		tests := []struct {
			name string
			b    *Builtin
		}{
			{name: "bucket prefix", b: &Builtin{Source: &Bucket{Client: client, Bucket: bucket, Prefix: "mirror", PageSize: 2}, Prefix: "flows"}},
			{name: "flow log prefix", b: &Builtin{Source: &Bucket{Client: client, Bucket: bucket}, Prefix: "mirror/flows/"}},
		}
		for _, tt := range tests {
			got, err := digestAll(t, tt.b, testStart, testStop)
			require.NoError(t, err, tt.name)
			require.Equal(t, string(wantDigest), got, tt.name)
		}
	})

	t.Run("list and open", func(t *testing.T) {
		t.Parallel()
		bucket := srv.NewBucket(t)
		for _, k := range []string{"p/AWSLogs/a.log", "p/AWSLogs/b.log", "p/AWSLogs/c.log", "p/AWSLogs/x/d.log", "p/AWSLogs/y/e.log", "p/other.log"} {
			putObject(t, client, bucket, k, "content of "+k)
		}
		putObject(t, client, bucket, "p/AWSLogs/z/", "") // a console "folder"
		for _, pageSize := range []int32{0, 1, 2} {
			src := &Bucket{Client: client, Bucket: bucket, Prefix: "/p/", PageSize: pageSize}
			got, err := src.List(context.Background(), "AWSLogs/")
			require.NoError(t, err)
			slices.Sort(got)
			require.Equal(t, []string{"AWSLogs/a.log", "AWSLogs/b.log", "AWSLogs/c.log", "AWSLogs/x/", "AWSLogs/y/", "AWSLogs/z/"}, got, "page size %d", pageSize)

			got, err = src.List(context.Background(), "AWSLogs/z/")
			require.NoError(t, err)
			require.Empty(t, got, "the folder marker is not a file")

			got, err = src.List(context.Background(), "nothing/")
			require.NoError(t, err)
			require.Empty(t, got)
		}
		src := &Bucket{Client: client, Bucket: bucket, Prefix: "p"}
		rc, err := src.Open(context.Background(), "AWSLogs/x/d.log")
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		require.Equal(t, "content of p/AWSLogs/x/d.log", string(b))

		_, err = src.Open(context.Background(), "AWSLogs/missing.log")
		require.ErrorIs(t, err, types.ErrNotFound)
		require.Contains(t, err.Error(), bucket+"/p/AWSLogs/missing.log")
	})

	t.Run("a corrupt object fails the digest", func(t *testing.T) {
		t.Parallel()
		bucket := srv.NewBucket(t)
		good := plainKey("111122223333", "us-east-1", "20261101T1010Z", -1, ".log")
		bad := hiveKey("111122223333", "us-east-1", "20261101T1020Z", 10, ".log.gz")
		putObject(t, client, bucket, good, body(defaultHeader,
			rec("111122223333", "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT")))
		putObject(t, client, bucket, bad, corrupt)
		_, err := (&Builtin{Source: &Bucket{Client: client, Bucket: bucket}}).Digest(context.Background(), testStart, testStop)
		require.Error(t, err)
		require.Contains(t, err.Error(), bad)
		require.True(t, types.IsPermanent(err))
	})

	t.Run("a missing bucket fails the digest", func(t *testing.T) {
		t.Parallel()
		_, err := (&Builtin{Source: &Bucket{Client: client, Bucket: "no-such-bucket"}}).Digest(context.Background(), testStart, testStop)
		require.Error(t, err)
		require.Contains(t, err.Error(), "no-such-bucket")
		require.NotErrorIs(t, err, ErrNoFlowLogs)
	})
}

// TestBucketServerDown stops the S3 server: the digest fails promptly
// instead of hanging, and works again once the server is back.
func TestBucketServerDown(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	bucket := srv.NewBucket(t)
	key := plainKey("111122223333", "us-east-1", "20261101T1010Z", -1, ".log")
	line := rec("111122223333", "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT")
	putObject(t, client, bucket, key, body(defaultHeader, line))
	b := &Builtin{Source: &Bucket{Client: client, Bucket: bucket}}

	srv.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := b.Digest(ctx, testStart, testStop)
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "failed on its own, before the deadline")

	srv.Restart(t)
	got, err := digestAll(t, b, testStart, testStop)
	require.NoError(t, err)
	require.Equal(t, line+"\n", strings.Replace(got, " 0 22 ", " 50000 22 ", 1))
}
