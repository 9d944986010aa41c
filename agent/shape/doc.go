// Package shape is foreshape's planner (the Resource Shaping Manager): one
// pure function, Run, that turns forecasts, a view of the cluster, the
// migration queue, the reservations held, the policies and `now` into a
// Plan — migration requests to create (drain schedules, rebalancing),
// reservations to place or release, scale actions, the queue's scores and
// wait reasons, and the moves to start now — each decision with its reason
// and numbers.
//
// Each pass:
//
//   - drain schedules: migrate.lead_time before a drain window, one request
//     per node of the drained localities (strategy drain) or per allocation
//     on them (reschedule, affinity), targeted at the policy's
//     migrate.targets (or any other policy's locality that shares no
//     node with the drained one) that the job's constraints allow and
//     that has the most room (with no migrate.targets, the rest of a
//     locality first for a drain of some of its nodes, and the policy's
//     own locality first for a drain of all of another, whose work its
//     forecast carries inside the window as far as it fits under its
//     line: each while every move may run there and it stays under its
//     line; an own locality with no forecast yet, its room not known,
//     is not tried first and takes the moves only when no other target
//     can); a window's request
//     not started is cancelled once its window has ended, or once its
//     schedule (or policy) is no longer in the policies;
//   - rebalancing (migrate.rebalance): when a locality's planning quantile
//     crosses its headroom line and no request already relieves it, the
//     fewest allocations whose moves bring it back under the line, to a
//     target with room over the whole window;
//   - spreading (migrate.spread): Nomad never moves placed work onto nodes
//     added later, so after a scale-out the nodes that ran the work
//     congest while the new ones stand empty. A node's demand is read as
//     its share of the locality's forecast demand over the horizon, in
//     proportion to what its allocations hold, and with
//     migrate.spread_by_use also in proportion to their own use forecast
//     per task group (Forecast.Group), the hotter reading counting; a
//     node over the line sheds the allocations cheapest to transfer (the
//     metric at its peak per MiB moved) that bring it under,
//     each onto the receiving node left lowest, which must stay under the
//     line and under the locality's mean (read, as its room is, on the
//     nodes that take new work) (or, once no such move is left
//     and the node is still over the line, under its capacity, the move
//     lowering the higher of the two nodes' peaks by a point of capacity
//     or more), have the room to allocate it (less what placeholders hold,
//     the chunks Nomad has not placed yet included), and hold no more of its
//     group than the node it leaves (job anti-affinity would send it
//     back); never a group whose last spread off that node landed back on
//     it. At most max_parallel requests
//     within the locality a pass, none while one is unfinished; they take
//     no reservation (a reservation packed there keeps off the room they
//     will take) and start only while no other transfer runs through the
//     locality;
//   - pre-allocation: for each request not yet running, in score order,
//     the capacity its target needs over the move's window [start, start +
//     estimated duration] at the target policy's planning quantile: the
//     moved resources plus the predicted demand plus what earlier moves
//     into the target and other reservations hold (and what moves finished
//     within its longest season landed in it, which the forecast has not
//     yet seen at every time of day), against the headroom line, over the
//     window and on to the end of the forecast, since the moved work stays;
//     when the window fits, a reservation of the moved allocations' sizes
//     (one placeholder chunk per allocation, packed onto the target's free
//     node capacity, less the chunks of the reservations held that Nomad
//     has not placed yet and the room of the unfinished spreads there
//     whose allocations have not stopped yet, see holdSpreads)
//     reserve.lead_time ahead of the planned start;
//   - capacity: a locality's load (its forecast, rebalancing, spreading's
//     shares, score's relief) is on all its ready nodes, but its room
//     (the check of a move's window, the room a target is chosen for,
//     score's pressure, a hotspot that scales, spreading's mean,
//     reservations' packing) is
//     on the ready nodes Nomad places new work on (Node.Receiving): an
//     ineligible or draining node's room can take no replacement and no
//     placeholder (a node a spread holds out of scheduling while it runs
//     counts as taking work: see takesWork). The planning quantile is
//     read there as the part of the demand that runs on those nodes (in
//     proportion to what allocations hold, as spreading reads a node)
//     over their capacity: an ineligible node's work stays on it, a
//     draining one's is placed on them unless a whole-node request of the
//     queue drains it (that request's arrival counts it). A target none of whose ready nodes
//     takes new work has no room, and a locality in that state is not
//     scaled for a hotspot;
//   - dynamic scaling: when a reservation does not fit (its placeholder
//     not all placed PlaceholderGrace after Nomad accepted it counts so,
//     unless Input.Unplaceable says no node could take it whatever its
//     size: nodes added would not take it either, so none is scaled
//     for, and its request waits saying why; nor while
//     Input.Rescheduling says Nomad places it anew), or a hotspot is
//     forecast and no request relieves it (read on the forecast's absolute
//     demand over the capacity now when it carries one: a percentage of
//     an older capacity would scale again after every scale-out), a scale
//     action through the policy's first scale block not in cooldown, in
//     flight, backing off after a failure (from the target's answer) or at
//     its max (Input.AtMax, the count its target last showed; for a target
//     that cannot tell its count, Input.MaxAsked: its latest action
//     succeeded asking its max, less than MaxAskedHold ago), issued once
//     the need is within the target's observed lead time plus
//     reserve.lead_time, within min and max; the reason of an action
//     through a later block names the blocks passed over as asked for
//     their max. With no later block that can act, the first block
//     passed over as asked for its max is asked again (once its own
//     cooldown is over and no call of it is open). The need of a
//     move whose target crosses the line after it is the move's start, however far off the crossing: Nomad
//     never moves placed work onto nodes added later, so the move waits
//     for the capacity (no longer than the target's lead time and
//     PlaceholderGrace after the action, and not past its deadline);
//   - prioritisation: score = relieve_hotspot × (relief at the source −
//     pressure added at the target) + critical × criticality + age ×
//     waited (see score.go); a request whose target is predicted congested
//     over the window of a move starting now (whatever its place in line;
//     a window shorter than the forecast's step is checked at the next
//     point) waits, with that reason, unless its deadline (a drain window)
//     leaves no more time, and waits behind a request ahead of it in line
//     into the same target that waits for room there (congested now, its
//     reservation not fitting, capacity still coming) unless its deadline
//     presses: moved work stays, so room taken by a move behind would be
//     taken from the one ahead for good. Deadlines are judged earliest
//     deadline first per locality a move goes through (source and
//     target): a request's deadline presses once the work running and due
//     no later than it there, max_parallel at a time, each round starting
//     at a pass a forecast step apart, plus a slack (twice the longest
//     move, at least a quarter of migrate.lead_time) would reach it, and
//     then every request due no later than it there presses too (see
//     deadlines; when even back to back the caps cannot meet them all,
//     their reasons say so), and a pressed request is planned for now,
//     not for when its target has room; the per-locality max_parallel
//     (source and target alike) and the global cap bound what runs at once,
//     and a pass starts one new transfer through a locality (transfers
//     through it share its bandwidth) unless a deadline presses.
//
// Run never reads the clock, the network or randomness, and never changes
// its inputs: the same Input always gives the same Plan. What the plan says
// is done by agent/migrate, the only door to Nomad and the scale targets.
package shape
