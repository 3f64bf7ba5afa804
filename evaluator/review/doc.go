// Package review is the human side of evaluation: rubrics that say what a
// reviewer scores, queues that hand sampled outputs to reviewers under leases,
// the agreement statistics that say whether reviewers can be trusted (Cohen's
// kappa, Krippendorff's alpha) and Bradley-Terry ratings from blind pairwise
// preferences. It is pure: no I/O, an injected clock and seeded randomness, so
// the console (the adapter) decides where items come from and where scores go.
package review
