// Package migrate is foreshape's coordinator: the one door through which
// every change foreshape makes to Nomad, and every scale action, passes.
// It carries out the planner's (agent/shape) plans — migration requests,
// reservations held by placeholder jobs, scale actions and moves — under
// the per-locality and global caps, and follows each move until its
// replacement runs where it should.
//
// # Safety
//
// Every side effect is announced before it is made: the coordinator writes
// an intent with an ID it chooses (kind, object, request and attempt) to
// the replicated state, confirms with the Raft quorum that it still leads
// in the term it started in (Leader.VerifyLeader), makes the call, and
// writes the outcome. A call Nomad answers with a 5xx, or not at all,
// may have been made: its effect is read back, as Begin reads it, and
// the intent closed done when it is there (a scale target, whose effect
// Nomad cannot show, is read back through its status). The state
// machine opens an intent ID once only, so a retried Apply, or a second
// leader racing a deposed one, cannot perform a call twice. At the start of each term Begin reconciles the intents a
// previous leader left open against Nomad (did that stop happen? does that
// placeholder exist?) before anything new is done: a found effect is
// closed as done and its move followed, a missing one as not done and its
// request queued again under the same attempt (a leader that stopped
// tried nothing of the move), its stop announced again under the intent's
// next redo ID; an effect found missing that
// is still wanted (a window's eligibility, a reaping, a hand-over) is
// announced again under the intent's next redo ID when it comes up again.
// An intent a leader that leads on could not close (its leadership check
// timed out, its open or its outcome could not be written) it closes at
// its next pass with what it knows: not done when it made no call, else
// the call's outcome (closeLeftOpen).
// A reservation its leader left planned is held if its placeholder's
// registration is done, else released for the planner to place anew; so
// is, at the next pass, one a failed state update left planned under a
// leader that leads on (its registration closed, or never announced). Each
// pass counts a held reservation's placeholder allocations Nomad has not
// placed (Reservation.Unplaced: the API's placed until none is left).
// Before stopping an allocation the coordinator reads it afresh and never
// stops one Nomad already stops.
//
// # Moves
//
// Strategies: reschedule stops each allocation (marking the source node
// ineligible first when a whole node moves, and while a spread moves work
// off it, so that Nomad cannot place the replacement back), drain drains the node with a
// deadline at its window's start so Nomad honours each job's migrate block,
// affinity adds an affinity to the target's datacenter to the job's group
// and stops the allocation. A move that holds a reservation hands it over
// in the same step: the placeholder's group of the moved allocation's size
// shrinks by one right before the stop, so the replacement finds the room.
// The follower (Follow, driven by blocking queries on allocations in Watch)
// settles each move once the replacement runs — healthy where its group has
// checks — records where it landed and how long it took against the
// estimate (the estimate learns per pair of datacenters and size), ends a
// move whose job someone stopped or purged (Nomad places no replacement;
// an allocation's or group's request of which nothing moved is cancelled),
// settles a move off a node purged from Nomad (`nomad node purge`) once
// its replacement runs (Nomad keeps the old allocation as its client last
// reported it, for good) and says so in the request's reason, settles a
// move off a disconnected node once its replacement runs (the old
// allocation, unknown, is stopped by its client when the node is back;
// a drain request's node may still be draining) and stops an unknown
// allocation even where Nomad already replaced it (Nomad undoes that
// replacement at the reconnect unless the original was stopped), ends
// without a replacement a move Nomad will not replace while the node is
// disconnected (its group sets disconnect.replace = false, or its
// follow-up evaluation is the max-disconnect-timeout), takes as the
// replacement of a lost allocation Nomad did not link to one the newest
// of its job and name (stop_on_client_after), retries
// (three attempts) or fails with a reason, releases what is left of the
// reservation, extends a reservation whose move overruns its estimate, and
// restores eligibility it changed (a drain window's nodes once the window
// ends, a spread's node once the spread ends; a purged node has none to
// give back; a node an operator drained after foreshape took it out, the
// order read from the node's events in Nomad before the two hosts'
// clocks, is left as the drain left it). A node's request whose node was purged before it started is
// cancelled when it would start, and so is an allocation's request whose
// allocations Nomad has collected since it was queued. Each plan-and-act pass
// (RunOnce) first settles the moves that ended since the last one, so a
// place under max_parallel that a move left is free for the pass's plan.
//
// # Reservations
//
// Placeholders are low-priority service jobs named foreshape-reserve-<id>,
// one task group per allocation size (so a hand-over shrinks them by
// exactly one allocation), constrained to the locality's datacenter, node
// pool and class, at the policy's reserve.priority, with the task driver
// and config of the agent's reserve block, no deployments (update
// max_parallel 0), and meta naming the owner cluster, the reservation, the
// request and the expiry. The leader reaps placeholders whose reservation
// is gone, released or expired, and only its own cluster's. A placeholder
// Nomad has not all placed shape.PlaceholderGrace after accepting it has
// its evaluations read: when they show that no node could take it
// whatever its size (every node evaluated filtered out, by a task driver
// the nodes lack and not by its own constraints, which a node added
// passes, none short of room), the planner is
// told (shape.Input.Unplaceable) and does not scale for it, a decision
// says why every ten minutes and the agent's log once at ERROR; one whose
// nodes lack its task driver while reserve.driver now names another is
// released, to be placed anew with it. A placeholder allocation Nomad
// placed on a node holds its room there until it is terminal, whether its
// task runs or not (pending: an image it cannot pull, a start that keeps
// failing and restarting), so the planner counts it held and foreshape
// does not scale for it; one whose task has not started
// shape.PlaceholderGrace after its placement is said in a decision every
// ten minutes (its node and its task's last events) and the agent's log
// once at WARN. One whose every allocation not holding room failed on
// its node for good (a driver error Nomad does not restart after, such as
// raw_exec's command missing) holds no room, and nodes added would fail
// it alike: it is taken as one no node can take (not scaled for, said
// with the task's last events), and released to be placed anew once
// reserve.driver or reserve.config differ from its task.
//
// # Dry run
//
// A plan whose action is marked DryRun (forecast_only in the agent or a
// policy) is recorded in the decision log and changes nothing in Nomad.
//
// It must never be bypassed: no other package makes a mutating Nomad call
// or scales a target. It never reads the wall clock: `now` is passed in.
package migrate
