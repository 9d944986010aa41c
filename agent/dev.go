package agent

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// devPolicies shape the localities of the simulator's default scenario.
//
//go:embed dev-policies.hcl
var devPolicies []byte

// DevPolicies returns the policies `foreshape agent -dev` runs with.
func DevPolicies() ([]*policies.Policy, error) {
	pols, diags := policies.Parse("dev-policies.hcl", devPolicies)
	if diags.HasErrors() {
		return nil, fmt.Errorf("dev policies: %s", diags.Error())
	}
	return pols, nil
}

// DefaultDevSpeed runs the default scenario's surge (three virtual hours
// in) one wall minute after start.
const DefaultDevSpeed = 180

// DevSim is a simulated Nomad cluster served on a loopback port for the dev
// agent.
type DevSim struct {
	Cluster *sim.Cluster
	URL     string
	Speed   float64

	srv      *http.Server
	listener net.Listener
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

// StartDevSim starts the default scenario at speed on 127.0.0.1 (any free
// port) and runs its clock until Stop.
func StartDevSim(speed float64, log hclog.Logger) (*DevSim, error) {
	if speed <= 0 {
		return nil, errors.New("dev sim: speed must be positive")
	}
	c, err := sim.New(sim.DefaultScenario(), sim.Options{Logger: log.Named("sim")})
	if err != nil {
		return nil, fmt.Errorf("dev sim: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dev sim: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &DevSim{Cluster: c, URL: "http://" + l.Addr().String(), Speed: speed, listener: l, cancel: cancel,
		srv: &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		_ = d.srv.Serve(l)
	}()
	go func() {
		defer d.wg.Done()
		if err := c.Run(ctx, speed); err != nil {
			log.Error("dev sim clock stopped", logKeyError, err)
		}
	}()
	return d, nil
}

// Clock returns the data clock of the simulated cluster.
func (d *DevSim) Clock() Clock { return EmbeddedSimClock{Sim: d.Cluster, Rate: d.Speed} }

// Stop stops the clock and the server.
func (d *DevSim) Stop() {
	d.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
	d.wg.Wait()
}
