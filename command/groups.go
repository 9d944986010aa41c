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
	group("forecast", "Forecasts: show, evaluate, detect anomalies, train", `
Usage: foreshape forecast <subcommand> [options] [args]

  Work with forecasts: show the agent's forecast of a locality; evaluate
  foreshape's forecasting engine, or detect anomalies and score its
  anomaly detector, on trace files; or train the learned global
  forecaster foreshape embeds.

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
