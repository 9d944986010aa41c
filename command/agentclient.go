package command

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/foreshape/foreshape/agent/api"
)

// clientFlags are the flags of every command that talks to an agent.
type clientFlags struct {
	address string
	token   string
	json    bool
}

const clientFlagsHelp = `
  -address=ADDR  The agent's HTTP API address. Default: $FORESHAPE_ADDR or
                 http://127.0.0.1:7575.
  -token=TOKEN   The API token, when the agent has acl { enabled = true }.
                 Default: $FORESHAPE_TOKEN.
  -json          Print the agent's answer as JSON instead of a table.`

func (c *clientFlags) register(fs *flag.FlagSet) {
	addr := os.Getenv("FORESHAPE_ADDR")
	if addr == "" {
		addr = api.DefaultAddress
	}
	fs.StringVar(&c.address, "address", addr, "agent HTTP API address")
	fs.StringVar(&c.token, "token", os.Getenv("FORESHAPE_TOKEN"), "API token")
	fs.BoolVar(&c.json, "json", false, "print JSON")
}

func (c *clientFlags) client() *api.Client {
	return &api.Client{Address: c.address, Token: c.token}
}

// printJSON writes v indented to the command's standard output.
func (m *Meta) printJSON(v any) int {
	enc := json.NewEncoder(m.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		m.UI.Error(fmt.Sprintf("error: %v", err))
		return ExitInvalid
	}
	return ExitOK
}

// table returns a tab writer over standard output; call Flush when done.
func (m *Meta) table() *tabwriter.Writer {
	return tabwriter.NewWriter(m.Out, 0, 4, 2, ' ', 0)
}

// apiError prints an error from the agent's API and returns ExitInvalid.
func (m *Meta) apiError(err error) int {
	m.UI.Error(fmt.Sprintf("error: %v", err))
	return ExitInvalid
}
