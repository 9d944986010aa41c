# A batch node pool.
#
# Batch work arrives in bursts that follow no clean season, is tolerant of
# delay, and is best scaled by an external autoscaling group. This policy
# lets the engine detect seasons, plans at the median, and asks the cloud
# through a webhook to add nodes, or a local command while the webhook's
# block cools down, waits for its answer or backs off after a failure.

shaping "batch-pool" {
  locality {
    node_pool = "batch"
  }

  forecast {
    model       = "ets"
    horizon     = "4h"
    step        = "5m"
    history     = "7d"
    seasonality = "auto"
    quantile    = 0.5
    # Further metrics to forecast, read from Prometheus (the agent needs
    # prometheus.address): name → PromQL template, where {{.Matchers}}
    # stands for this locality's label matchers.
    queries = {
      queue_depth = "sum(batch_queue_depth{ {{.Matchers}} })"
    }
  }

  headroom {
    cpu    = 10
    memory = 15
  }

  # Batch jobs can wait for capacity: no placeholders.
  reserve {
    enabled = false
  }

  # Ask the autoscaling group behind the pool for more nodes.
  scale "asg" {
    min      = 2
    max      = 40
    cooldown = "15m"

    target "webhook" {
      url    = "https://autoscaler.internal.example.com/v1/groups/batch"
      method = "PUT"
      headers = {
        "Content-Type"  = "application/json"
        "X-Scale-Owner" = "foreshape"
      }
      # A Go text/template; the runtime fills in the desired count.
      body    = "{\"desired\": {{ .Count }}}"
      timeout = "15s"
    }
  }

  # A local script for the on-premises part of the pool. The planner
  # scales through the first block, in file order, that is not cooling
  # down, waiting for its target's answer, backing off after a failure or
  # at its max: for a target that reports its count, as last read; for
  # this exec block, which cannot, once its last action succeeded asking
  # for its max (for four cooldowns, at least an hour, while a later
  # block can act: docs/targets.md).
  scale "onprem" {
    min = 0
    max = 8

    target "exec" {
      command = ["/usr/local/bin/onprem-scale", "--pool", "batch"]
      timeout = "2m"
      env = {
        ONPREM_SITE = "lab"
      }
    }
  }

  migrate {
    max_parallel = 6
    # affinity: steer replacements with a job affinity update.
    strategy = "affinity"

    priority {
      relieve_hotspot = 1
      critical        = 1
      age             = 3
    }
  }
}
