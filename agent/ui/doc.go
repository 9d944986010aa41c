// Package ui is the operator's dashboard, served by the agent under /ui/:
// the localities' forecasts as charts, the migration queue, the planner's
// decisions and the cluster's state.
//
// Pages are rendered on the server: html/template for the page and SVG
// built in Go for the charts, with a small hand-written script (no build
// step) that refreshes the page when the agent announces a change over
// server-sent events and works without it. Every asset is embedded, so the
// dashboard works offline and adds no Node.js to the build.
//
// The dashboard reads and acts through the same backend as the HTTP API and
// follows the API's token rules: with ACLs on, every page, event stream and
// action needs a valid token (sent as a header, or kept in an HttpOnly
// cookie after the login form), and every action carries a CSRF field
// derived from it. The package must never hold domain logic, change state
// other than through its backend, or load anything from another origin.
package ui
