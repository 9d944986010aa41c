package nab

import "path"

// The NAB files foreshape's anomaly detector is developed on are split in
// two, and the split was fixed before any setting of the detector was tuned:
//
//   - Tuning: the seven files bundled with foreshape (traces/nab). Every
//     threshold, window and default of the detector is chosen by measuring
//     on these only.
//   - HeldOut: the other six NAB files of the shared data set
//     (../shared/data/nab). They are scored with the settings fixed on the
//     tuning files, and those figures are the ones foreshape reports.
//
// The two parts hold 12 labelled windows each. The split follows what is
// bundled, not anything a detector did on the files.
var (
	Tuning = []string{
		"realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv",
		"realAWSCloudwatch/ec2_cpu_utilization_c6585a.csv",
		"realAWSCloudwatch/ec2_cpu_utilization_fe7f93.csv",
		"realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv",
		"realAWSCloudwatch/ec2_network_in_257a54.csv",
		"realAWSCloudwatch/grok_asg_anomaly.csv",
		"realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv",
	}
	HeldOut = []string{
		"realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
		"realAWSCloudwatch/ec2_cpu_utilization_77c1ca.csv",
		"realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
		"realAWSCloudwatch/elb_request_count_8c0756.csv",
		"realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv",
		"realKnownCause/machine_temperature_system_failure.csv",
	}
)

// Part names which part of the split a labelled file (a key of
// combined_windows.json, or a path ending in one) belongs to: "tuning",
// "held-out", or "" for a NAB file in neither.
func Part(file string) string {
	file = path.Clean(file)
	for _, list := range []struct {
		name  string
		files []string
	}{{"tuning", Tuning}, {"held-out", HeldOut}} {
		for _, f := range list.files {
			if file == f || len(file) > len(f) && file[len(file)-len(f)-1:] == "/"+f {
				return list.name
			}
		}
	}
	return ""
}
