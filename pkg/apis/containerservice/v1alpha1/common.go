package v1alpha1

// SubjectKind says whether a subject names a user or a group of users.
// +enum
type SubjectKind string

const (
	// SubjectKindUser is a single user, as the authenticator names it (for OIDC, the username claim with its prefix).
	SubjectKindUser SubjectKind = "User"
	// SubjectKindGroup is every user the authenticator puts in the group.
	SubjectKindGroup SubjectKind = "Group"
)

// Subject is a user or group who is given rights inside user clusters.
type Subject struct {
	// kind is User or Group.
	Kind SubjectKind `json:"kind"`
	// name is the user or group name as the authenticator reports it. Names starting
	// with "system:" are refused, since they would reach the clusters' built-in identities.
	Name string `json:"name"`
}
