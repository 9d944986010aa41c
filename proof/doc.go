// Package proof measures foreshape's central claim, that acting before
// congestion beats reacting to it. It runs several controllers over the
// same simulated Nomad cluster, each on its own copy built from the same
// scenario and seed, with the same move requests arriving at the same
// virtual times, and scores each from the simulator's ground truth:
//
//   - none: moves start as soon as they are requested, all at once;
//   - throttle: network-locality-based throttling, a per-locality cap on
//     concurrent moves, new moves into or out of a locality held while its
//     current utilisation is over the line;
//   - reactive: throttle plus a target-value autoscaler on current
//     utilisation with a cooldown, as Nomad Autoscaler scales a cluster;
//   - foreshape: the agent's own shaper and coordinator with its own
//     forecasts;
//   - oracle: the same code path fed the simulator's true future instead of
//     forecasts, the bound no forecaster can beat.
//
// Every controller talks to its cluster through the real nomad/api client
// against the simulator's HTTP handler (in process, without a socket), and
// scales capacity through one "cloud" endpoint that adds simulated nodes.
// Runs advance in virtual time, as fast as the machine allows, several
// controllers at once.
//
// The package must never read the wall clock in anything that decides or
// measures (progress reporting alone may), never score a controller from
// what the controller says it did, and never let one controller's run
// touch another's cluster: the same scenario and seed give the same
// results, byte for byte.
package proof
