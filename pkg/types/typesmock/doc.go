// Package typesmock holds generated go.uber.org/mock doubles of the
// contract's interfaces, for the tests whose point is the order of calls
// across a module boundary.
package typesmock

//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -destination mocks.go -package typesmock github.com/asecurityteam/vpcflow-grapherd/pkg/types Storage,Marker,Queuer,Digester
