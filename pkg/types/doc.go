// Package types holds the contract between vpcflow-grapherd and its pluggable
// modules: Storage, Marker, Queuer, Digester and Grapher, and the error values
// they return. It imports neither net/http nor any cloud SDK, so a module can be
// written against it without pulling in the rest of the service.
package types
