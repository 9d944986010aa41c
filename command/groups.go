package command

func init() {
	group("config", "Inspect and validate agent configuration", `
Usage: foreshape config <subcommand> [options] [args]

  Work with the agent's HCL configuration.

Example:

  $ foreshape config validate /etc/foreshape/config.d
`)
	group("policy", "Validate and format shaping policies", `
Usage: foreshape policy <subcommand> [options] [args]

  Work with shaping policy files (HCL).

Example:

  $ foreshape policy validate policies/examples/*.hcl
`)
	group("forecast", "Forecasts: show, evaluate, detect anomalies", `
Usage: foreshape forecast <subcommand> [options] [args]

  Inspect the agent's forecasts, or evaluate foreshape's forecasting engine
  and anomaly detector on trace files.

Example:

  $ foreshape forecast eval -data ../shared/data/nab -horizon 12
`)
	group("sim", "Run the simulated Nomad cluster", `
Usage: foreshape sim <subcommand> [options]

  foreshape carries a simulated Nomad cluster that answers Nomad's HTTP API,
  driven by real utilisation traces, for trying policies and for tests.

Example:

  $ foreshape sim serve -addr 127.0.0.1:4646
`)
}
