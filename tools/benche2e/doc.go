// Package benche2e measures the whole graph job end to end: the real
// binary, with S3 storage and marks on Versity S3 Gateway or with files,
// fed by an HTTP stand-in for vpcflow-digesterd serving a 1,000,000-record
// gzip digest, or by the built-in digester reading 100 gzip flow-log files.
// It times each job from POST / to the GET / that answers 200 and reports
// the worker's peak RSS, the job's own phases, and the CPU time per job of
// the worker and of the S3 gateway, which share the machine's cores: a job
// cannot take less wall time than their sum over the cores, which it
// reports as cpu-floor-s/job. `make bench-e2e` runs it:
//
//	go test ./tools/benche2e -run '^$' -bench E2E -benchtime 3x
//
// BENCH_SERVICE_X=v in its environment sets X=v in the service's, to
// measure a setting: BENCH_SERVICE_GRAPHERD_DIGEST_MEMORY_BYTES=16777216.
package benche2e
