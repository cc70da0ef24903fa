package flowtable

import (
	"math"
	"slices"
)

// goldenAngle spreads a sunflower spiral's points evenly.
var goldenAngle = math.Pi * (3 - math.Sqrt(5))

// layout gives every node a starting position on a sunflower spiral, the
// busiest node (bytes in and out) in the middle and quieter ones further
// out. It is deterministic, O(n log n) and needs no iterations, so a viewer
// has a meaningful first frame at once and refines it with its own layout.
func layout(v *View) {
	order := make([]int, len(v.Nodes))
	for i := range order {
		order[i] = i
	}
	traffic := func(i int) int64 { return v.Nodes[i].BytesIn + v.Nodes[i].BytesOut }
	slices.SortStableFunc(order, func(x, y int) int {
		tx, ty := traffic(x), traffic(y)
		switch {
		case tx > ty:
			return -1
		case tx < ty:
			return 1
		}
		return x - y
	})
	for rank, i := range order {
		r := 10 * math.Sqrt(float64(rank))
		theta := float64(rank) * goldenAngle
		v.Nodes[i].X = math.Round(r*math.Cos(theta)*1000) / 1000
		v.Nodes[i].Y = math.Round(r*math.Sin(theta)*1000) / 1000
	}
}
