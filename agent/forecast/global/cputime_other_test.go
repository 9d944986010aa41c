//go:build !unix

package global

import "time"

func processCPU() time.Duration { return 0 }
