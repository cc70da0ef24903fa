// Package v1 holds the HTTP handlers of vpcflow-grapherd: the API that creates
// and fetches graphs, the worker endpoint that makes them, and the health
// checks. Handlers return errors; one adapter (writeError) turns them into
// status codes and JSON bodies and logs them once.
package v1
