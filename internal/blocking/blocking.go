// Package blocking bounds one of Nomad's blocking queries (a query with a
// WaitIndex, which Nomad holds until its index moves past it or its wait
// ends). The context such a query is sent with is usually the life of the
// loop that sends it, so a request whose connection goes silent (a load
// balancer dropping the flow, a partitioned server) would hang for as
// long, the list the loop keeps current frozen without a log line. Bound
// gives each request a context that ends a little after Nomad must have
// answered, and says so in the request's error when that end, not the
// loop's, cut it off: the loop logs it and asks again.
//
// It performs no I/O and reads no clock.
package blocking

import (
	"context"
	"errors"
	"fmt"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

const (
	// MaxWait is the longest a Nomad server holds a blocking query, and
	// how long it holds one that asks for no wait
	// (MaxBlockingRPCQueryTime and DefaultBlockingRPCQueryTime in Nomad's
	// nomad/structs).
	MaxWait = 5 * time.Minute
	// Margin is what a request gets beyond the longest Nomad holds it:
	// for the server to forward it to the leader (it holds a request up
	// to its rpc_hold_timeout, 5 s, while there is none), write the
	// answer and the client to read it. It is the agent's bound on a
	// Nomad call that does not block (preflight.DefaultNomadTimeout).
	Margin = 30 * time.Second
)

// ErrNoAnswer is the error of a request that Bound's context ended.
var ErrNoAnswer = errors.New("no answer from Nomad in time")

// Wait is how long Nomad holds a blocking query that asks to wait for
// wait when nothing changes, before its jitter: wait, but MaxWait for a
// longer one and for one under a millisecond (nomad/api sends the wait in
// whole milliseconds, and Nomad reads none, "0ms" or less as no wait).
func Wait(wait time.Duration) time.Duration {
	w := wait.Truncate(time.Millisecond)
	if w <= 0 || w > MaxWait {
		return MaxWait
	}
	return w
}

// Limit is how long a request with q's options may take: for a blocking
// query (a WaitIndex), Nomad's Wait, plus the jitter Nomad adds to it (a
// random part of up to a sixteenth: blockingRPC in Nomad's nomad/rpc.go),
// plus margin; margin alone for a query Nomad answers at once.
func Limit(q *nomadapi.QueryOptions, margin time.Duration) time.Duration {
	if q == nil || q.WaitIndex == 0 {
		return margin
	}
	w := Wait(q.WaitTime)
	return w + w/16 + margin
}

// Bound returns a copy of q whose context, under ctx, ends at Limit(q,
// margin), and end, to call with the request's error once its answer is
// read (nomad/api's calls have read it when they return): end releases
// the context and returns the error, wrapping ErrNoAnswer and saying how
// long the request had when the bound, not ctx, ended it.
func Bound(ctx context.Context, q *nomadapi.QueryOptions, margin time.Duration) (bounded *nomadapi.QueryOptions, end func(error) error) {
	limit := Limit(q, margin)
	rctx, cancel := context.WithTimeout(ctx, limit)
	if q == nil {
		q = &nomadapi.QueryOptions{}
	}
	return q.WithContext(rctx), func(err error) error {
		defer cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(rctx.Err(), context.DeadlineExceeded) {
			return err
		}
		if q.WaitIndex == 0 {
			return fmt.Errorf("%w: none within %s: %w", ErrNoAnswer, limit, err)
		}
		w := Wait(q.WaitTime)
		return fmt.Errorf("%w: none within %s (the blocking query's wait of %s, the up to %s Nomad adds to it, and %s): %w",
			ErrNoAnswer, limit, w, w/16, margin, err)
	}
}
