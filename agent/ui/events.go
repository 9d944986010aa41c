package ui

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// heartbeatEvery is how many polls pass between keep-alive comments on an
// idle event stream.
const heartbeatEvery = 15

// version fingerprints what the dashboard shows: it changes when the leader
// finishes a cycle (and, with the act half, when the queue or the decisions
// change), and the pages reload their content when it does. A follower has
// no cycle of its own: the leader's shows in when its forecasts were
// published (a follower reads them at most once a cycle). Once the last
// cycle is staleAfter old, it changes every minute too, so that a page
// whose agent stopped cycling says how old its forecasts are (the panels'
// age), where it kept looking fresh: nothing else changes then.
func (h *Handler) version(ctx context.Context) string {
	v := "none"
	st := h.b.Status(ctx)
	if lc := st.LastCycle; lc != nil {
		v = strconv.FormatInt(lc.Started.UnixNano(), 36)
		if !st.Now.IsZero() {
			v += ageMark(st.Now.Sub(lc.Started.Add(lc.Duration)))
		}
	} else if fs := h.b.Forecasts(ctx); len(fs) > 0 {
		v = "p" + strconv.FormatInt(fs[0].Published.UnixNano(), 36) + ageMark(time.Duration(fs[0].AgeSeconds*float64(time.Second)))
	}
	if qi, ok := h.opts.Act.(queueIndexer); ok {
		if i, err := qi.QueueIndex(ctx); err == nil {
			v += "." + strconv.FormatUint(i, 36)
		}
	} else if h.opts.Act != nil {
		if q, err := h.opts.Act.Queue(ctx); err == nil {
			v += "." + strconv.FormatUint(q.Index, 36)
		}
	}
	return v
}

// queueIndexer is an act backend that tells the queue's index (its
// Queue's Index) without building the queue, as the agent's does: every
// event stream reads it each poll.
type queueIndexer interface {
	QueueIndex(ctx context.Context) (uint64, error)
}

// ageMark is the part of the version that changes each minute once a
// cycle is age old and staleAfter or more; empty before.
func ageMark(age time.Duration) string {
	if age < staleAfter {
		return ""
	}
	return ".a" + strconv.FormatInt(int64(age/time.Minute), 36)
}

// events streams server-sent events: "update" with the new version whenever
// it changes, and a comment every few polls to keep proxies from closing an
// idle stream. The stream ends when the client leaves or the agent shuts
// down (Close), and with a "denied" event at the first poll that finds its
// token no longer accepted (taken out of acl.token_file and the agent
// reloaded): the page then asks again and gets the sign-in form. The check
// is the one every request passes (an atomic load of the token list and a
// constant-time comparison), made before the version, which costs more.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	ctx := r.Context()
	last := h.version(ctx)
	fmt.Fprintf(w, "retry: 2000\nevent: hello\ndata: %s\n\n", last)
	fl.Flush()
	t := time.NewTicker(h.opts.Poll)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-t.C:
		}
		if why := h.denied(r); why != "" {
			h.log.Warn("event stream ended: its token is no longer accepted", "reason", why, "remote_addr", r.RemoteAddr)
			fmt.Fprint(w, "event: denied\ndata: token no longer accepted\n\n")
			fl.Flush()
			return
		}
		if v := h.version(ctx); v != last {
			last = v
			if _, err := fmt.Fprintf(w, "event: update\ndata: %s\n\n", v); err != nil {
				return
			}
			fl.Flush()
		} else if n%heartbeatEvery == 0 {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// Close ends every open event stream, so that the HTTP server's graceful
// shutdown does not wait for them; register it with RegisterOnShutdown.
func (h *Handler) Close() { h.closeOnce.Do(func() { close(h.done) }) }
