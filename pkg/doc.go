// Package grapherd wires vpcflow-grapherd together: a Service holds the
// pluggable modules (Storage, Marker, Queuer, Digester, Grapher), fills the
// ones left nil with built-in defaults chosen from the configuration, and
// binds the API, worker and health routes onto a chi router.
package grapherd
