package berth

import "context"

// ChangeKind is the kind of a change to a container's filesystem, with
// docker's numbering.
type ChangeKind int

const (
	// ChangeModify ("C"): the path existed in the image and was changed
	// (for a directory: something below it changed).
	ChangeModify ChangeKind = iota
	// ChangeAdd ("A"): the path is new.
	ChangeAdd
	// ChangeDelete ("D"): the path was removed.
	ChangeDelete
)

// String returns docker diff's letter for the kind.
func (k ChangeKind) String() string {
	switch k {
	case ChangeModify:
		return "C"
	case ChangeAdd:
		return "A"
	case ChangeDelete:
		return "D"
	}
	return "?"
}

// Change is one changed path of a container's filesystem.
type Change struct {
	Kind ChangeKind
	Path string // absolute, as seen in the container
}

// String formats the change as docker diff prints it: "A /added.txt".
func (c Change) String() string { return c.Kind.String() + " " + c.Path }

// Diff lists the changes the container made to its image's filesystem
// (docker diff), sorted by path: added, changed and deleted files and
// directories, whether it runs or not. The mount points berth makes for
// every container (/etc/hosts, /etc/resolv.conf, /proc, ...) are not
// changes, as in docker; volumes and other mounts are not part of it.
func (c *Container) Diff(ctx context.Context) ([]Change, error) { return c.diff(ctx) }
