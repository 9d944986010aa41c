package preflight

import "golang.org/x/sys/unix"

// kernelFS are the Linux file systems that are views of the kernel (its
// processes, devices, control groups, security modules, firmware
// variables), where no program creates a file of its own: a directory
// made there (where one can be) is a control group or a trace instance,
// not storage. Root's permission check passes in them all the same.
var kernelFS = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "proc",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.SELINUX_MAGIC:       "selinuxfs",
	unix.SMACK_MAGIC:         "smackfs",
	unix.BPF_FS_MAGIC:        "bpf",
	unix.PSTOREFS_MAGIC:      "pstore",
	unix.EFIVARFS_MAGIC:      "efivarfs",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
	unix.BINFMTFS_MAGIC:      "binfmt_misc",
	unix.NSFS_MAGIC:          "nsfs",
}

// kernelFSOf names the kernel's file system dir is on ("proc"), or ""
// when it is on another (or statfs fails: the checks after it tell why).
func kernelFSOf(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return ""
	}
	// Type is int64 on amd64 and arm64, a signed 32 bits on 386 and arm,
	// where the magic numbers over 2^31 (selinuxfs, efivarfs, bpf) read
	// negative: read as the unsigned 32 bits they are.
	return kernelFS[int64(uint32(st.Type))]
}
