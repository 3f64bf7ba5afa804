package qa

// Hooks for the external tests' benchmarks.
var (
	// CheckPNGBefore is Check on an unseen PNG as it was before the
	// faster pngWork: the baseline of BenchmarkCheckVsDecode.
	CheckPNGBefore = (*Checker).checkPNGBefore
	// ThreadCPU is the calling thread's CPU time.
	ThreadCPU = threadCPU
)
