// Package global is foreshape's learned global forecaster: one neural
// network, trained across many series rather than fitted to one, that maps
// a normalised window of a series' recent history (plus the values one day
// earlier and calendar features) to quantiles of its next H points.
//
// Two architectures share the same inputs and outputs: "nbeats", a stack
// of residual fully connected blocks in the N-BEATS style with an N-HiTS
// style coarse output (the network predicts the quantiles at a few knots
// of the horizon; the steps between are interpolated), and "lstm", a long
// short-term memory network over the recent window with a fully connected
// head. Train fits either with the pinball loss over every quantile, by
// Adam on minibatches of windows, deterministically for a given seed.
//
// The weights foreshape ships are embedded (see Default): trained by `make
// train` on the tuning part of the traces whose licences allow shipping
// derived weights, with their provenance in each file's header. FineTune
// continues training on a cluster's own series.
//
// The package is pure: weights and series in, forecasts out. It never
// performs I/O (the embedded weights are compiled in), never reads the
// clock, and never logs.
package global
