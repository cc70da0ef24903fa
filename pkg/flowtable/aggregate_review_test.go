package flowtable_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
)

// TestReviewCapStopsAggregationEarly: without top and min_bytes every
// merged pair is an edge of the view and every node touches one, so a view
// is over its cap as soon as the pairs or nodes merged so far are. Aggregate
// nevertheless merges the whole graph (up to 16 million pairs, about 1 GB)
// before answering that the view is too large, so any client asking
// group=addr of a large graph makes the server spend the memory of a view
// it will refuse.
func TestReviewCapStopsAggregationEarly(t *testing.T) {
	t.Parallel()
	recs := make([]flowlog.Record, 20000)
	for i := range recs {
		recs[i] = flowlog.Record{Version: 2, SrcAddr: addrN(2 * i), DstAddr: addrN(2*i + 1), DstPort: 443, Protocol: 6,
			Packets: 1, Bytes: 100, Action: flowlog.ActionAccept, LogStatus: flowlog.StatusOK}
	}
	for _, limits := range []flowtable.Limits{{MaxEdges: 100}, {MaxNodes: 100}} {
		_, err := flowtable.Aggregate(context.Background(), fromRecords(recs), flowtable.Params{Format: flowtable.FormatJSON}, limits)
		var tooLarge *flowtable.TooLargeError
		require.True(t, errors.As(err, &tooLarge), "%v", err)
		require.LessOrEqual(t, tooLarge.Merged, 101, "pairs merged for a view refused at %+v", limits)
	}
}
