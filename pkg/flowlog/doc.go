// Package flowlog reads AWS VPC Flow Log records and compacts them into
// digests.
//
// It understands both inputs the service meets: the digests that
// vpcflow-digesterd (or the built-in digester) returns, which are version 2
// records with no header, and raw flow-log files as AWS delivers them, with an
// optional header line naming the fields of a custom format (versions 2 to 8,
// fields in any order, "-" for a field with no value), gzip-compressed or
// plain, and AWS's Parquet flow-log files (FileFormat=parquet), told apart
// by content and read a row group at a time. Reading is streaming and allocation-free per line in the common case,
// so a digest of any size can be read with memory that grows only with the
// number of distinct account and interface ids.
//
// Lines that carry no flow (blank, header, NODATA, SKIPDATA) are skipped;
// malformed lines are skipped and counted, never a panic. The package has no
// knowledge of graphs or storage: package grapher draws the records and the
// digesters compact them with a Compactor (in memory) or a
// PartitionedCompactor (within a memory budget, spilling to disk beyond it).
package flowlog
