package archive

// ChangeKind is the kind of a Change, as `docker diff` prints it.
type ChangeKind int

const (
	// Modified ("C"): the path existed in a lower layer and was changed,
	// or is a directory whose contents changed.
	Modified ChangeKind = iota
	// Added ("A"): the path exists in no lower layer.
	Added
	// Deleted ("D"): the path was removed (a whiteout in the upper dir).
	Deleted
)

// String returns docker diff's letter for the kind: "C", "A" or "D".
func (k ChangeKind) String() string {
	switch k {
	case Modified:
		return "C"
	case Added:
		return "A"
	case Deleted:
		return "D"
	}
	return "?"
}

// Change is one changed path of a container's file system.
type Change struct {
	Kind ChangeKind
	Path string // absolute, as seen in the container: "/etc/hosts"
}

// String formats the change as docker diff does: "C /etc".
func (c Change) String() string { return c.Kind.String() + " " + c.Path }

// Changes lists the changes an overlay upper dir makes to its lower
// layers (lowers[0] is the topmost, as in overlay's lowerdir option), with
// docker diff's semantics, sorted by path:
//   - a 0/0 character device (whiteout) is Deleted;
//   - any other entry is Modified if the merged lower layers have its path
//     (honouring their whiteouts and opaque directories) and Added if not;
//     directories in upper are there because something below them changed,
//     so they appear as Modified (or Added);
//   - below an opaque directory (trusted.overlay.opaque=y, a directory that
//     was removed and created again) nothing of the lowers shows: the
//     directory is Modified and what it holds now is Added. The lower
//     entries it hides are not listed, as docker does not list them.
func Changes(upper string, lowers []string) ([]Change, error) {
	return changes(upper, lowers)
}
