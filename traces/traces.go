// Package traces embeds small samples of real utilisation traces (NAB,
// PlanetLab, datacenter aggregates; see ATTRIBUTION.md) so that tests, the
// simulator's default scenario and `make dev` work on a fresh clone.
//
// It only serves bytes: parsing belongs to the readers that use the data.
// It must never grow into a copy of a large dataset; larger runs read the
// full sets from disk through a flag.
package traces

import (
	"embed"
	"io/fs"
)

//go:embed ATTRIBUTION.md nab planetlab datacenter
var files embed.FS

// FS returns the embedded traces, rooted at this directory: paths look like
// "nab/data/realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv".
func FS() fs.FS { return files }

// Open opens one embedded trace file.
func Open(name string) (fs.File, error) { return files.Open(name) }

// ReadFile returns the contents of one embedded trace file.
func ReadFile(name string) ([]byte, error) { return files.ReadFile(name) }
