"""`uwsgidecorators` for apps that ugu serves: the decorators uWSGI's
module of that name gives apps, written for ugu over its `uwsgi` module.

ugu puts the folder holding this file at the END of sys.path, in the
process that loads the apps only: a uwsgidecorators installed in the
app's environment (pip's uwsgi ships one) is found first.

Importing it takes three hooks of the `uwsgi` module, as uWSGI's does:
uwsgi.spooler (the functions spooled through @spool, @spoolforever and
@spoolraw), uwsgi.post_fork_hook (the @postfork functions, and the
loops of @mule, @muleloop, @mulemsg and @farm) and uwsgi.mule_msg_hook
(the @mulefunc calls a mule receives).

What a decorator needs and ugu lacks (Erlang) is
said when the decorator is used, by the error it raises.
"""

import functools
import pickle
import sys
import threading

import uwsgi

if not uwsgi.masterpid():
    raise RuntimeError("uwsgidecorators needs the master process: add "
                       "`master = true` to the config")

# What each hook runs; public, as apps may read or extend them.
spooler_functions = {}      # name -> a spooled function
mule_functions = {}         # name -> a @mulefunc function
postfork_chain = []         # called in turn, without arguments

# The keys of a spooled task's dict that name its function, and the
# answer its spooler gives whatever the function returns.
_FUNCTION_KEY = "ud_spool_func"
_ANSWER_KEY = "ud_spool_ret"
# Keyword arguments that, with pass_arguments, go to uwsgi.spool rather
# than to the function.
_SPOOL_OPTIONS = ("message_dict", "spooler", "priority", "at", "body")
_MULEFUNC = "uwsgi_mulefunc"


def _as_bytes(value):
    return value.encode("utf-8") if isinstance(value, str) else value


def _as_str(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def get_free_signal():
    """The lowest signal number without a handler in this process."""
    for signum in range(256):
        if not uwsgi.signal_registered(signum):
            return signum
    raise RuntimeError("every uWSGI signal number has a handler already")


# -- the hooks -------------------------------------------------------------
def manage_spool_request(task):
    """uwsgi.spooler: run the function a task names.  With pass_arguments
    it gets the pickled arguments; else the task's dict, str keys and
    values.  The answer is the decorator's (SPOOL_OK for @spool,
    SPOOL_RETRY for @spoolforever), else the function's own."""
    found = {_as_str(key): value for key, value in task.items()}
    pickled = "args" in found
    if pickled:
        args = pickle.loads(found.pop("args"))
        kwargs = pickle.loads(found.pop("kwargs"))
    found = {key: _as_str(value) for key, value in found.items()}
    function = spooler_functions[found[_FUNCTION_KEY]]
    answer = function(*args, **kwargs) if pickled else function(found)
    return int(found.get(_ANSWER_KEY, answer))


def postfork_chain_hook():
    """uwsgi.post_fork_hook: each postfork_chain entry, in order."""
    for entry in postfork_chain:
        entry()


def mule_msg_dispatcher(message):
    """uwsgi.mule_msg_hook: a @mulefunc call, run in this mule."""
    call = pickle.loads(message)
    if call["service"] == _MULEFUNC:
        return mule_functions[call["func"]](*call["args"], **call["kwargs"])
    return None


uwsgi.spooler = manage_spool_request
uwsgi.post_fork_hook = postfork_chain_hook
uwsgi.mule_msg_hook = mule_msg_dispatcher


# -- after fork ------------------------------------------------------------
class postfork:
    """@postfork: the function runs in each process after fork;
    @postfork(N): in worker N only."""

    def __init__(self, f):
        self.wid, self.f = (0, f) if callable(f) else (f, None)
        postfork_chain.append(self)

    def __call__(self, *args, **kwargs):
        if self.f is None:
            # @postfork(N) applied to its function.
            self.f = args[0]
            return self
        if self.wid and self.wid != uwsgi.worker_id():
            return None
        return self.f()


# -- the spooler -----------------------------------------------------------
class _Spooled:
    """A function spooled by calling it: the call becomes a task, which a
    spooler runs through manage_spool_request."""

    decorator = "spoolraw"
    answer = None   # the spooler's answer, None: the function's

    def __init__(self, f, pass_arguments):
        if "spooler" not in uwsgi.opt:
            raise RuntimeError(
                f"@{self.decorator} needs a spooler: add `spooler = DIR` "
                f"to the config")
        self.f = f
        self.pass_arguments = pass_arguments
        spooler_functions[f.__name__] = f
        # Older apps spool through function.spool(...).
        f.spool = self

    def __call__(self, *args, **kwargs):
        """Spool the call; the task file's path (bytes)."""
        task = {_FUNCTION_KEY: self.f.__name__}
        if self.answer is not None:
            task[_ANSWER_KEY] = str(self.answer)
        if self.pass_arguments:
            for key in _SPOOL_OPTIONS:
                if key in kwargs:
                    task[key] = kwargs.pop(key)
            task["args"] = pickle.dumps(args)
            task["kwargs"] = pickle.dumps(kwargs)
        else:
            if args:
                task.update(args[0])
            task.update(kwargs)
        return uwsgi.spool({_as_bytes(key): _as_bytes(value)
                            for key, value in task.items()})

    spool = __call__


class _Done(_Spooled):
    decorator = "spool"
    answer = uwsgi.SPOOL_OK


class _Forever(_Spooled):
    decorator = "spoolforever"
    answer = uwsgi.SPOOL_RETRY


def _spooled(kind, f, pass_arguments):
    if f is None:
        return functools.partial(kind, pass_arguments=pass_arguments)
    return kind(f, pass_arguments)


def spool(f=None, pass_arguments=False):
    """@spool: the task is done once the function returns."""
    return _spooled(_Done, f, pass_arguments)


def spoolforever(f=None, pass_arguments=False):
    """@spoolforever: the task runs again on every scan."""
    return _spooled(_Forever, f, pass_arguments)


def spoolraw(f=None, pass_arguments=False):
    """@spoolraw: the function returns the spooler's answer itself."""
    return _spooled(_Spooled, f, pass_arguments)


# -- mules -----------------------------------------------------------------
class mulefunc:
    """@mulefunc: a call runs in the first mule free; @mulefunc(N) in
    mule N (or a farm's, given its name as bytes)."""

    def __init__(self, f):
        self.mule, self.name = 0, None
        if callable(f):
            self.name = self._register(f)
        else:
            self.mule = f

    @staticmethod
    def _register(f):
        mule_functions[f.__name__] = f
        return f.__name__

    def __call__(self, *args, **kwargs):
        if self.name is None:
            # @mulefunc(N) applied to its function.
            self.name = self._register(args[0])
            return self.real_call
        return self.real_call(*args, **kwargs)

    def real_call(self, *args, **kwargs):
        call = {"service": _MULEFUNC, "func": self.name, "args": args,
                "kwargs": kwargs}
        uwsgi.mule_msg(pickle.dumps(call), self.mule)


class mule_brain:
    """Run in mule `num` after fork; an exception ends that mule."""

    def __init__(self, f, num):
        self.f, self.num = f, num

    def __call__(self):
        if uwsgi.mule_id() == self.num:
            self._run()

    def _run(self):
        try:
            self.f()
        except Exception:
            sys.excepthook(*sys.exc_info())
            sys.exit(1)


class mule_brainloop(mule_brain):
    """Run again and again in mule `num`."""

    def _run(self):
        while True:
            super()._run()


class mulemsg_loop:
    """Each message of mule `num` to the function."""

    def __init__(self, f, num):
        self.f, self.num = f, num

    def __call__(self):
        if uwsgi.mule_id() != self.num:
            return
        while True:
            message = uwsgi.mule_get_msg()
            if message:
                self.f(message)


class farm_loop:
    """Each message of farm `farm` to the function, in its mules."""

    def __init__(self, f, farm):
        self.f, self.farm = f, farm

    def __call__(self):
        if not uwsgi.mule_id() or not uwsgi.in_farm(self.farm):
            return
        while True:
            message = uwsgi.farm_get_msg()
            if message:
                self.f(message)


class _after_fork:
    """A decorator whose function is chained after fork, inside its
    `loop`, with the decorator's argument."""

    loop = None

    def __init__(self, what):
        self.what = what

    def __call__(self, f):
        postfork_chain.append(self.loop(f, self.what))


class mule(_after_fork):
    """@mule(N): the function runs once in mule N."""
    loop = mule_brain

    def __init__(self, num):
        super().__init__(num)


class muleloop(mule):
    """@muleloop(N): the function runs again and again in mule N."""
    loop = mule_brainloop


class mulemsg(mule):
    """@mulemsg(N): mule N's messages go to the function."""
    loop = mulemsg_loop


class farm(_after_fork):
    """@farm(name): the farm's messages go to the function, in its
    mules (in any farm's without a name)."""
    loop = farm_loop

    def __init__(self, name=None, **kwargs):
        super().__init__(name)


# -- signals ---------------------------------------------------------------
class signal:
    """@signal(N, target=...): the function handles uWSGI signal N."""

    def __init__(self, num, **kwargs):
        self.num = num
        self.target = kwargs.get("target", "")

    def __call__(self, f):
        uwsgi.register_signal(self.num, self.target, f)
        self.arm()
        return f

    def arm(self):
        """What raises the signal, for the kinds that add one."""


class _raised(signal):
    """A handler on a free signal (or `signum=`), and what raises it."""

    def __init__(self, *when, **kwargs):
        signum = kwargs.get("signum")
        super().__init__(get_free_signal() if signum is None else signum,
                         **kwargs)
        self.when = when


class timer(_raised):
    """@timer(seconds): the function runs every `seconds`."""

    def arm(self):
        uwsgi.add_timer(self.num, *self.when)


class rbtimer(_raised):
    """@rbtimer(seconds): as @timer, on uWSGI's red-black tree timers."""

    def arm(self):
        uwsgi.add_rb_timer(self.num, *self.when)


class cron(_raised):
    """@cron(minute, hour, day, month, weekday): -1 is any."""

    def arm(self):
        uwsgi.add_cron(self.num, *self.when)


class filemon(_raised):
    """@filemon(path): the function runs when the file or folder
    changes."""

    def arm(self):
        uwsgi.add_file_monitor(self.num, *self.when)


# -- the rest --------------------------------------------------------------
class rpc:
    """@rpc(name): the function is uWSGI's RPC function `name`."""

    def __init__(self, name):
        self.name = name

    def __call__(self, f):
        uwsgi.register_rpc(self.name, f)
        return f


class erlang:
    """@erlang(name): uWSGI's Erlang plugin, which ugu lacks."""

    def __init__(self, name):
        self.name = name

    def __call__(self, f):
        raise AttributeError("uwsgidecorators.erlang is not available: ugu "
                             "has no Erlang support (uWSGI's erlang plugin)")


def lock(f):
    """@lock: calls run under uWSGI's lock 0, one process at a time;
    a spooler, which cannot take it, does not run the function."""
    @functools.wraps(f)
    def locked(*args, **kwargs):
        if uwsgi.i_am_the_spooler():
            return None
        uwsgi.lock()
        try:
            return f(*args, **kwargs)
        finally:
            uwsgi.unlock()
    return locked


def thread(f):
    """@thread: each call runs in a daemon thread of its own; it returns
    the function at once."""
    @functools.wraps(f)
    def started(*args, **kwargs):
        threading.Thread(target=f, args=args, kwargs=kwargs,
                         daemon=True).start()
        return f
    return started


class harakiri:
    """@harakiri(seconds): a call longer than `seconds` ends its worker
    (uwsgi.set_user_harakiri)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __call__(self, f):
        @functools.wraps(f)
        def timed(*args, **kwargs):
            uwsgi.set_user_harakiri(self.seconds)
            answer = f(*args, **kwargs)
            uwsgi.set_user_harakiri(0)
            return answer
        return timed
