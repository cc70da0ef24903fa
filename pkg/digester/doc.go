// Package digester holds the built-in types.Digester implementations: HTTP,
// a client for a running vpcflow-digesterd, and Builtin, which reads VPC Flow
// Log files the way AWS delivers them (from a folder or a bucket) and compacts
// them itself, so that no vpcflow-digesterd is needed.
//
// Both return the digest as a stream, but they hold different amounts of it.
// HTTP passes vpcflow-digesterd's response body on as it arrives, so a digest
// far larger than memory never sits in memory. Builtin must read every file
// of the window before its first line is known: Digest returns only once all
// files are read and compacted, holding one entry per distinct flow (memory
// grows with distinct flows, not with the size of the files), and then
// streams those entries out as digest lines.
package digester
