// Package sim is a simulated Nomad cluster: an in-process model of nodes,
// jobs, allocations, evaluations and deployments, a deterministic scheduler
// in the manner of Nomad's default one, load driven by real utilisation
// traces, migration cost that depends on memory size and on the bandwidth of
// the locality a migration crosses, a virtual clock, injectable faults, and
// an HTTP server that answers the subset of Nomad's HTTP API that foreshape
// uses, encoded with github.com/hashicorp/nomad/api's own types.
//
// It serves every Nomad-facing test, the embedded default behind `make dev`
// and the what-if evaluation of policies on real traces. The sim records
// ground truth (per node and minute demand, capacity and congestion, every
// migration, every mutating API request) so tests and evaluations can assert
// on what really happened.
//
// The sim must never read the wall clock in its model logic: virtual time
// only moves through Step, RunUntil or Run (which alone ties virtual time to
// the wall clock with a speed factor). All randomness comes from one seeded
// source and maps are iterated in sorted order, so the same scenario and seed
// always give the same ground truth. It must never talk to a real Nomad.
package sim
