// Command foreshape is the foreshape agent and operator CLI.
//
// main stays thin: it builds a context cancelled by the first SIGINT or
// SIGTERM (its cause names the signal, for the agent's shutdown log), runs
// the CLI, and exits with its code. A second signal forces exit.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/foreshape/foreshape/command"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		cancel(fmt.Errorf("received %s", sig))
		<-sigs
		fmt.Fprintln(os.Stderr, "foreshape: second signal received, exiting now")
		os.Exit(130)
	}()
	code := command.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel(nil)
	os.Exit(code)
}
