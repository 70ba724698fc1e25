package berth

import (
	"context"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/oci"
)

// merge returns res with the fields u sets replaced, and which cgroup
// controllers the change touches.
func (u Update) merge(res Resources) (Resources, updatedControllers) {
	var ch updatedControllers
	n := u.Resources
	set64 := func(dst *int64, v int64, flag *bool) {
		if v != 0 {
			*dst, *flag = v, true
		}
	}
	set64(&res.Memory, n.Memory, &ch.memory)
	set64(&res.MemorySwap, n.MemorySwap, &ch.memory)
	set64(&res.MemoryReservation, n.MemoryReservation, &ch.memory)
	set64(&res.NanoCPUs, n.NanoCPUs, &ch.cpu)
	set64(&res.CPUShares, n.CPUShares, &ch.cpu)
	set64(&res.CPUPeriod, n.CPUPeriod, &ch.cpu)
	set64(&res.CPUQuota, n.CPUQuota, &ch.cpu)
	set64(&res.PidsLimit, n.PidsLimit, &ch.pids)
	if n.CpusetCpus != "" {
		res.CpusetCpus, ch.cpu = n.CpusetCpus, true
	}
	if n.CpusetMems != "" {
		res.CpusetMems, ch.cpu = n.CpusetMems, true
	}
	if n.BlkioWeight != 0 {
		res.BlkioWeight, ch.blkio = n.BlkioWeight, true
	}
	return res, ch
}

type updatedControllers struct{ memory, cpu, pids, blkio bool }

func (c *Container) update(ctx context.Context, u Update) error {
	r := c.rt
	lk, st, rec, err := r.lockedState(ctx, c.rec.ID)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	spec := rec.Spec
	old := spec.Resources
	var ch updatedControllers
	spec.Resources, ch = u.merge(old)
	if u.Resources.Memory != 0 && u.Resources.MemorySwap == 0 && old.MemorySwap > 0 && old.MemorySwap < u.Resources.Memory {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cannot update container %s: memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", rec.Name))
	}
	if u.RestartPolicy != nil {
		if spec.AutoRemove && u.RestartPolicy.Name != "" && u.RestartPolicy.Name != RestartNo {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cannot update container %s: restart policy cannot be updated because AutoRemove is enabled for the container", rec.Name))
		}
		spec.RestartPolicy = *u.RestartPolicy
	}
	im, err := r.imageOfRecord(rec)
	if err != nil {
		return err
	}
	if err := r.validateSpec(&spec, im); err != nil {
		return fmt.Errorf("cannot update container %s: %w", rec.Name, err)
	}
	res, err := r.linuxResources(&spec, im)
	if err != nil {
		return fmt.Errorf("cannot update container %s: %w", rec.Name, err)
	}
	if st.Status == StatusRunning || st.Status == StatusPaused {
		cg, err := r.liveCgroup(rec, st)
		if err != nil {
			return err
		}
		var apply specs.LinuxResources
		if ch.memory {
			apply.Memory = res.Memory
		}
		if ch.cpu {
			apply.CPU = res.CPU
		}
		if ch.pids {
			apply.Pids = res.Pids
		}
		if ch.blkio {
			apply.BlockIO = res.BlockIO
		}
		if err := cg.Update(&apply); err != nil {
			return fmt.Errorf("cannot update container %s: %w", rec.Name, err)
		}
	}
	if err := r.updateRecord(rec.ID, func(cur *containerRecord) error {
		cur.Spec.Resources, cur.Spec.RestartPolicy = spec.Resources, spec.RestartPolicy
		return nil
	}); err != nil {
		return err
	}
	r.event(ctx, "container", "update", rec.ID, map[string]string{"name": rec.Name, "image": rec.ImageName})
	return nil
}

// linuxResources are the OCI resources the spec generator makes of
// spec's limits.
func (r *Runtime) linuxResources(spec *Spec, im *Image) (*specs.LinuxResources, error) {
	cfg, err := r.ociConfig(spec, im, "/", newIDForValidation)
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.GroupAdd = "0", nil
	cfg.Image.User = ""
	gen, err := oci.Generate(cfg)
	if err != nil {
		return nil, err
	}
	if gen.Linux == nil || gen.Linux.Resources == nil {
		return &specs.LinuxResources{}, nil
	}
	return gen.Linux.Resources, nil
}

// updateRecord changes the container's record with fn under the store
// lock (the caller holds the container lock: lock order is container,
// then store).
func (r *Runtime) updateRecord(id string, fn func(*containerRecord) error) error {
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := r.readRecord(id)
	if err != nil {
		return err
	}
	if err := fn(cur); err != nil {
		return err
	}
	return r.writeRecord(cur)
}

func (c *Container) rename(ctx context.Context, name string) error {
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		return errdefs.New(errdefs.ErrInvalid, "neither old nor new names may be empty")
	}
	if !validName.MatchString(name) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	r := c.rt
	lk, err := r.lockContainer(c.rec.ID)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	var oldName string
	err = r.updateRecord(c.rec.ID, func(cur *containerRecord) error {
		oldName = cur.Name
		if cur.Name == name {
			return errdefs.New(errdefs.ErrInvalid, "renaming a container with the same name as its current name")
		}
		if err := r.checkName(name); err != nil {
			return fmt.Errorf("error when allocating new name: %w", err)
		}
		cur.Name, cur.Spec.Name = name, name
		return nil
	})
	if err != nil {
		return err
	}
	r.event(ctx, "container", "rename", c.rec.ID, map[string]string{"name": name, "oldName": "/" + oldName, "image": c.rec.ImageName})
	return nil
}
