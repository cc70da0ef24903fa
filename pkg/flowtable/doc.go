// Package flowtable keeps the flow table of a graph and answers views of it.
// The table is a compact encoding of a graph's flow records, written by the
// worker in the same pass as the DOT; a view groups those records into
// nodes, merges them into edges, filters and ranks them (Aggregate), and is
// then written as graphology JSON, CSV, readable DOT or Graphviz SVG, one
// small file per format. Nothing here knows HTTP: the handler parses the
// query into Params and hands it down.
package flowtable
