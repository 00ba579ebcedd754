"""Backends that run a built network and hand back what was observed.

- ``runtime``: Brian2's runtime device with the numpy (or cython) code-generation target. No
  compiler needed; used by the tests and for debugging.
- ``standalone``: Brian2's C++ standalone device, built once per network structure into a
  project-local cache folder, then re-run with new weights, inputs and perturbations through
  ``device.run(run_args=...)``. Tens of times faster per trial than a runtime loop.

A backend runs a *blueprint*: any object with a ``key`` (a hash of everything that ends up in
generated code) and ``build()``, which creates the Brian2 objects on the active device and
returns a network handle with ``network`` (a ``brian2.Network``), ``duration``,
``assignments(**run_values)`` (-> ``{variable or TimedArray: array}``) and ``read()``. Rate and
spiking networks both provide one, so the backends know nothing about either.

Brian2's device is global to the process. A runtime backend sets it before each run; a
standalone backend needs it only to build, and then runs its binary and reads its result files
on its own, so backends of different networks take turns freely.

Randomness drawn inside a run (``rand()`` in generated code) comes from the ``seed`` given to
:meth:`run`: the runtime device seeds Brian2 with it, and a standalone binary reads it from the
environment at start-up (its generated ``main`` would otherwise repeat one seed every run).
"""

import atexit
import fcntl
import gc
import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import brian2
import numpy as np
from brian2 import Quantity, TimedArray, prefs
from brian2.codegen.cpp_prefs import get_compiler_and_args
from brian2.devices.device import all_devices, set_device

from ..errors import BuildError, SimulationKilled
from ..registry import BACKENDS
from ..scratch import memory_folder

_open = {}  # structure key -> backend, so variants with the same structure share one build


SEED_VARIABLE = "BIOPLASTIC_RUN_SEED"
PARENT_VARIABLE = "BIOPLASTIC_PARENT_PID"  # read by die_with_parent.h
# Included in every standalone code object: the vector versions of tanh, exp, ... (see the file).
VECTOR_MATH = Path(__file__).resolve().parent.parent / "networks" / "vector_math.h"
# Included in main: the binary dies with the process that started it (see the file).
DIE_WITH_PARENT = Path(__file__).resolve().parent / "die_with_parent.h"
_HEADER_DIGEST = hashlib.sha1(VECTOR_MATH.read_bytes() + DIE_WITH_PARENT.read_bytes()).hexdigest()[:6]
# Inserted after brian_start(): reseed every generator from the environment, so one binary serves
# runs with different noise.
_RESEED = f"""
{{
    const char* _bp_seed = std::getenv("{SEED_VARIABLE}");
    unsigned long _bp_s = _bp_seed ? std::strtoul(_bp_seed, nullptr, 10) : 0UL;
    for (size_t _bp_i = 0; _bp_i < brian::_random_generators.size(); _bp_i++)
        brian::_random_generators[_bp_i].seed(_bp_s + 1000003UL * _bp_i);
}}
"""


def cache_root():
    """The project-local cache folder (``$BIOPLASTIC_CACHE`` or ``./.bioplastic_cache``)."""
    return Path(os.environ.get("BIOPLASTIC_CACHE", ".bioplastic_cache")).resolve()


class _Backend:
    def __init__(self, blueprint):
        self.blueprint = blueprint
        self.copies = blueprint.copies
        self.net = None

    def run(self, seed=0, **run_values):
        """Run once with the given run values (see the network's ``assignments``); return its ``read``."""
        self._ready()
        self._run(self.net.assignments(**run_values), int(seed))
        return self.net.read(self._get)

    def close(self):
        for key, backend in list(_open.items()):
            if backend is self:  # never hand out a closed backend again
                del _open[key]


class RuntimeBackend(_Backend):
    """One Brian2 runtime ``Network.run`` per trial, with the given code-generation target."""

    uses_threads = False

    def __init__(self, blueprint, threads=1, target="numpy"):
        super().__init__(blueprint)  # ``threads``: the runtime runs on one
        self.target = target

    def _ready(self):
        # Runtime objects keep their state in the runtime device, whatever device other
        # backends switch to in between: only the device and the target need setting again.
        set_device("runtime")
        prefs.codegen.target = self.target
        prefs.core.stop_on_keyboard_interrupt = False  # a Ctrl-C stops the command, not just this run
        if self.net is None:
            self.net = self.blueprint.build()
            self.net.network.store("trial_start")

    def _get(self, owner, variable):
        """The raw value of ``owner.variable`` (SI units; a monitor's record as (steps, recorded))."""
        return np.array(self.net.objects[owner].variables[variable].get_value())

    def _run(self, values, seed):
        network = self.net.network
        network.restore("trial_start")
        for variable, value in values.items():
            if isinstance(variable, TimedArray):  # its numpy implementation reads this very array
                variable.values[...] = np.reshape(value, variable.values.shape)
            else:  # run values are plain SI numbers
                variable[:] = Quantity(value, dim=variable.dim)
        brian2.seed(seed)
        # Network.run calls gc.collect(), which scans every object of the process (~190 000 once
        # Brian2 and SymPy are loaded): most of a trial's time. Frozen objects are skipped;
        # unfreezing afterwards hands them back to the collector, so nothing leaks.
        gc.freeze()
        try:
            network.run(self.net.duration, namespace={})
        finally:
            gc.unfreeze()


class StandaloneBackend(_Backend):
    """A C++ standalone build, compiled once per structure and re-run with ``run_args``.

    The compiled project stays in the project-local cache. Brian2's global device is needed only
    to build: afterwards the backend runs the binary itself and reads its result files by the
    names recorded at build time, so any number of built backends can take turns without
    rebuilding. The files every run writes and reads (``run_args`` arrays in ``static_arrays/``,
    all results in ``results/``) go to a scratch folder in memory (``/dev/shm``) where there is
    one: on a disk, creating and deleting those ~60 files costs more than the simulation itself.
    """

    uses_threads = True

    def __init__(self, blueprint, threads=1):
        super().__init__(blueprint)
        self.threads = int(threads)
        key = f"{blueprint.key}-{_HEADER_DIGEST}"  # a changed header is a new build
        self._key = key if self.threads == 1 else f"{key}-t{self.threads}"
        self.directory, self._lock = _claim_directory(self._key)
        self._scratch = None
        self._files = {}

    def _ready(self):
        if self.net is not None:
            return
        if self._lock is None:  # closed since (evicted from the open set): claim a build slot again
            self.directory, self._lock = _claim_directory(self._key)
        with _build_lock(self._key):  # one process builds a structure; the others copy its build
            _seed_from_finished_build(self.directory, self._key)
            try:
                self._build()
            except BuildError:
                if not (self.directory / _FINISHED).exists():
                    raise  # a fresh build failed: rebuilding would fail the same way
                _empty_slot(self.directory)  # a cached build that no longer links: once more, from nothing
                self._build()

    def _rebuild(self):
        """Build this slot again (a cached build was damaged): relink the binary from its objects,
        or, if they do not link either, compile from nothing. A failure then is final."""
        self.net = None
        (self.directory / "main").unlink(missing_ok=True)
        try:
            self._build()
        except BuildError:
            _empty_slot(self.directory)
            self._build()

    def _build(self):
        device = all_devices["cpp_standalone"]
        device.reinit()
        set_device("cpp_standalone", build_on_run=False, directory=str(self.directory))
        for header in (VECTOR_MATH, DIE_WITH_PARENT):  # in every code object (device.reinit() clears them)
            device.headers.append(f'"{header.name}"')
            device.include_dirs.append(str(header.parent))
        prefs.codegen.target = "numpy"  # only used for runtime; standalone generates C++
        prefs.core.stop_on_keyboard_interrupt = False  # the binary dies with the command on Ctrl-C
        prefs.devices.cpp_standalone.openmp_threads = self.threads if self.threads > 1 else 0
        device.insert_code("before_start", "bioplastic_die_with_parent();")
        device.insert_code("after_start", _RESEED)
        net = self.blueprint.build()
        net.network.run(net.duration, namespace={})
        self._link_scratch()
        prefs.devices.cpp_standalone.make_cmd_unix = "make >make.log 2>&1"  # the compiler's words go to a file
        network_source = self.directory / "network.cpp"
        before = (network_source.read_text(), network_source.stat()) if network_source.exists() else None
        try:
            device.build(directory=str(self.directory), run=False, compile=False, with_output=False)
            _read_the_clock_once(network_source, before)
            device.compile_source(str(self.directory), get_compiler_and_args()[0], debug=False, clean=False)
        except RuntimeError as exc:
            if "compilation failed" not in str(exc):
                raise
            complaint = _first_compiler_error(self.directory / "make.log")
            raise BuildError("the C++ build of the standalone network failed"
                             + (f": {complaint}" if complaint else "") + f"; see {self.directory / 'make.log'} (the "
                             f"standalone backend needs a C++ compiler, g++; training.backend = \"runtime\" needs "
                             f"none)") from None
        self._files = _result_files(device)
        (self.directory / _FINISHED).touch()
        self.net = net

    def _link_scratch(self):
        """Point ``results/`` and ``static_arrays/`` at a fresh in-memory folder (or a real one)."""
        if self._scratch is None:
            self._scratch = memory_folder()
        for name in ("results", "static_arrays"):
            link = self.directory / name
            if link.is_symlink():
                link.unlink()
            elif link.is_dir() and self._scratch is not None:
                shutil.rmtree(link)
            if self._scratch is not None:
                (self._scratch / name).mkdir(exist_ok=True)
                link.symlink_to(self._scratch / name, target_is_directory=True)

    def _get(self, owner, variable):
        try:
            name, dtype, columns = self._files[(owner, variable)]
        except KeyError:
            raise KeyError(f"standalone results: no array {owner}.{variable}") from None
        data = np.fromfile(self.directory / "results" / name, dtype=dtype)
        return data.reshape(-1, columns) if columns is not None else data

    def _run(self, values, seed):
        # The arrays go to fixed file names that each run overwrites, passed as "group.var=file"
        # run_args. (Given arrays, Brian2 would hash each one, lock a new content-named file per
        # run and never delete it.)
        args = []
        for variable, value in values.items():
            if isinstance(variable, TimedArray):
                owner, name, dtype = variable.name, "values", variable.values.dtype
            else:
                owner, name, dtype = variable.group_name, variable.name, variable.dtype
            array = np.asarray(value, dtype=dtype).ravel()
            file = f"run_{owner}_{name}.dat"
            array.tofile(self.directory / "static_arrays" / file)
            args.append(f"{owner}.{name}=static_arrays/{file}")
        done = self._execute(args, seed)
        if _crashed_at_start(done) and not self._rebuilt:  # a damaged cached binary: rebuild it, once
            self._rebuilt = True
            with _build_lock(self._key):
                self._rebuild()
            done = self._execute(args, seed)
        if _crashed_at_start(done):
            tail = done.stdout.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise BuildError(f"the standalone binary crashes even when built anew (exit {done.returncode}: {tail[0]}); "
                             f"see {self.directory / 'make.log'}")
        if done.returncode < 0:
            name = signal.Signals(-done.returncode).name if -done.returncode in signal.valid_signals() else \
                f"signal {-done.returncode}"
            raise SimulationKilled(f"the standalone simulation was killed by {name}"
                                   + (" (out of memory?)" if done.returncode == -signal.SIGKILL else ""))
        if done.returncode:
            tail = done.stdout.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise RuntimeError(f"the standalone simulation failed (exit {done.returncode}): {tail[0]}")

    _rebuilt = False

    def _execute(self, args, seed):
        """Run the binary once; a binary that cannot even start counts as a crash (exit 127)."""
        results = str(self.directory / "results") + os.sep
        environment = dict(os.environ, **{SEED_VARIABLE: str(seed), PARENT_VARIABLE: str(os.getpid())})
        try:
            return subprocess.run(["./main", "--results_dir", results, *args], cwd=self.directory, env=environment,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as exc:  # not executable, not a binary for this machine, gone
            return subprocess.CompletedProcess(["./main"], 127, f"cannot start ./main: {exc}".encode())

    def close(self):
        super().close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self.net = None  # rebuilt (from the cached compilation) if it is used again


# Brian2's standalone loop reads the process's CPU clock after every step, only to report the run's
# duration at its end: a system call per step, about a quarter of a small network's step.
_CLOCK_EVERY_STEP = """        current = std::clock();
        elapsed_realtime = (double)(current - start)/(1 * CLOCKS_PER_SEC);
"""
_LOOP_END = "    Network::_globally_running = false;\n"


def _read_the_clock_once(network_source, before=None):
    """Move the loop's clock reading after the loop (left as it is where the source differs).
    ``before``: the file's text and stat before Brian2 wrote it again; if the result is that
    text, its time stamp is restored, so that make finds a copied build up to date."""
    code = network_source.read_text()
    if code.count(_CLOCK_EVERY_STEP) == 1 and code.count(_LOOP_END) == 1:
        code = code.replace(_CLOCK_EVERY_STEP, "").replace(_LOOP_END, _CLOCK_EVERY_STEP.replace("        ", "    ")
                                                             + _LOOP_END)
        network_source.write_text(code)
    if before is not None and before[0] == code:
        os.utime(network_source, ns=(before[1].st_atime_ns, before[1].st_mtime_ns))


def _crashed_at_start(done):
    """Whether a run of the binary died as a damaged binary does: it could not start, or it was
    killed by a crash signal (not by a user or the kernel's OOM killer)."""
    crashes = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGABRT)
    return done.returncode in (126, 127) or (done.returncode < 0 and -done.returncode in crashes)


def _empty_slot(directory):
    """Delete a build slot's contents but its lock file (held by this process)."""
    for entry in directory.iterdir():
        if entry.name == ".lock":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _first_compiler_error(log):
    """The compiler's first ``error:`` line in ``make.log`` (None if there is none)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = next((line.strip() for line in lines if "error:" in line), None)
    return found[:300] if found else None


def _result_files(device):
    """``(owner, variable) -> (file name, dtype, columns of a 2d array or None)`` of every array
    the binary writes to ``results/``."""
    from brian2.core.variables import DynamicArrayVariable
    files = {}
    for var in list(device.arrays):
        try:
            owner = var.owner.name
        except ReferenceError:  # an owner that no longer exists
            continue
        columns = var.size[1] if isinstance(var, DynamicArrayVariable) and var.ndim == 2 else None
        files[(owner, var.name)] = (device.get_array_filename(var), np.dtype(var.dtype), columns)
    return files


_FINISHED = ".built"  # marks a slot whose build completed


def _slots(key):
    """The build folders of ``key``, slot 0 first."""
    root = cache_root() / "standalone"
    found = [p for p in root.glob(f"{key}-*") if p.name[len(key) + 1:].isdigit()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[len(key) + 1:]))


class _build_lock:
    """Held while a process builds ``key``: parallel workers that need the same structure wait for
    the first build and then copy it instead of compiling it again."""

    def __init__(self, key):
        self.path = cache_root() / "standalone" / f"{key}.build-lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "w")
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        self.file.close()  # releases the lock


def _seed_from_finished_build(directory, key):
    """Fill an unbuilt slot with a copy of a finished build of the same structure. The copy keeps
    the files' times, and Brian2 rewrites only generated files whose text changed, so ``make``
    finds the objects up to date and compiles nothing."""
    if (directory / _FINISHED).exists():
        return
    for other in _slots(key):
        if other != directory and (other / _FINISHED).exists():
            shutil.copytree(other, directory, symlinks=True, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".lock", _FINISHED, "results", "static_arrays"))
            return


def _claim_directory(key):
    """A build folder for ``key`` that no other process is using: slot 0, else 1, 2, ..."""
    for slot in range(64):
        directory = cache_root() / "standalone" / f"{key}-{slot}"
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / ".lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return directory, lock
    raise RuntimeError(f"no free standalone build slot for {key} under {cache_root()}")


BACKENDS.register("standalone", StandaloneBackend)
BACKENDS.register("runtime", RuntimeBackend)


@atexit.register
def close_all():
    """Close every open backend: give back build slots, remove scratch folders."""
    for backend in list(_open.values()):
        backend.close()


def get_backend(name, blueprint, threads=1):
    """A backend for this blueprint, reused if one with the same key is open already in this process.

    ``threads`` > 1 builds the standalone binary with OpenMP on that many threads (a build of its
    own); the runtime backend ignores it."""
    backend_class = BACKENDS.get_entry(name)
    key = (name, blueprint.key, threads if backend_class.uses_threads else 1)
    if key in _open:
        return _open[key]
    backend = backend_class(blueprint, threads)
    if len(_open) >= 8:  # keep a handful; the oldest gives its build slot back
        _open.pop(next(iter(_open))).close()
    _open[key] = backend
    return backend
