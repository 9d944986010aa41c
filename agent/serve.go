package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// frontDoor is what a server and a client agent alike show the world:
// the HTTP API and the Consul registration. serve runs both beside the
// agent's own work and stops them in one order; the agent's Close waits
// on leaving.
type frontDoor struct {
	listener net.Listener
	httpSrv  *http.Server
	consul   *consulRegistration // nil unless consul.enabled

	// leaving is the Consul deregistration serve started; the agent's
	// Close waits for it.
	leaving sync.WaitGroup
}

// httpShutdownWait bounds the HTTP API's shutdown (requests in flight
// finish within it) and, beside it, the Consul deregistration.
const httpShutdownWait = 5 * time.Second

// serve serves the API, keeps the Consul registration (its check every
// checkEvery) and runs each of work until ctx is done or one of them
// fails, then stops: the HTTP API ends its requests in flight within
// httpShutdownWait while the deregistration goes on beside it with its
// own httpShutdownWait, so that a Consul that takes
// the call and never answers holds neither the API nor what the caller
// does after serve (a leader's hand-over in Close). It returns the first failure
// of the API or of work (context.Canceled is none).
func (d *frontDoor) serve(ctx context.Context, log hclog.Logger, checkEvery time.Duration, work ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		cancel()
	}
	wg.Go(func() {
		log.Info("http api listening", logKeyAddress, d.listener.Addr().String())
		if err := d.httpSrv.Serve(d.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("agent: http: %w", err))
		}
	})
	for _, w := range work {
		wg.Go(func() {
			if err := w(ctx); err != nil && !errors.Is(err, context.Canceled) {
				fail(err)
			}
		})
	}
	registering := make(chan struct{})
	if d.consul != nil {
		go func() {
			defer close(registering)
			d.consul.run(ctx, checkEvery, resyncEvery)
		}()
	} else {
		close(registering)
	}
	<-ctx.Done()
	log.Info("shutting down", "reason", context.Cause(ctx))
	shutdownCtx, stop := context.WithTimeout(context.Background(), httpShutdownWait)
	<-registering // no registration can follow the deregistration
	if d.consul != nil {
		d.leaving.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), httpShutdownWait)
			defer cancel()
			d.consul.leave(ctx)
		})
	}
	_ = d.httpSrv.Shutdown(shutdownCtx)
	stop()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
