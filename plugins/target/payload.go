package target

import "time"

// Payload is the JSON document the webhook target sends as its request body
// (unless its body template says otherwise) and the exec target writes to
// the command's standard input. docs/targets.md documents it; fields are
// only ever added. A webhook body template is executed with a Payload, so
// it reads {{ .Count }}, {{ .Direction }}, {{ .RequestID }} and so on.
type Payload struct {
	RequestID string    `json:"request_id"`
	Policy    string    `json:"policy"`
	Scale     string    `json:"scale"`
	Locality  string    `json:"locality"`
	Direction Direction `json:"direction"`
	Amount    int       `json:"amount"`
	Count     int       `json:"count"`
	Min       int       `json:"min"`
	Max       int       `json:"max"`
	Reason    string    `json:"reason"`
	Time      time.Time `json:"time"`
}

// Payload returns the document describing a.
func (a Action) Payload() Payload {
	return Payload{RequestID: a.ID, Policy: a.Policy, Scale: a.Scale, Locality: a.Locality, Direction: a.Direction,
		Amount: a.Amount, Count: a.Count, Min: a.Min, Max: a.Max, Reason: a.Reason, Time: a.Time.UTC()}
}

// LogArgs are the key/value pairs a target's log lines about a carry
// (hclog's With): the policy and scale block it is for, its id and count.
func (a Action) LogArgs() []any {
	return []any{"policy", a.Policy, "scale", a.Scale, "request_id", a.ID, "count", a.Count}
}
