// Package digester holds the built-in types.Digester implementations: HTTP,
// a client for a running vpcflow-digesterd, and Builtin, which reads VPC Flow
// Log files the way AWS delivers them (from a folder or a bucket) and compacts
// them itself, so that no vpcflow-digesterd is needed.
//
// Both return the digest as a stream: a digest can be far larger than memory,
// so it flows from its source to the converter without being held whole.
package digester
