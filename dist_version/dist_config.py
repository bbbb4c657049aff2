"""Flags of dist_version: every main.py flag, plus towers per machine and the cluster layout.

The cluster comes from --ps_hosts/--worker_hosts/--job_name/--task_index, or, when those are not
given, from the TF_CONFIG environment variable in TensorFlow's usual format:
    {"cluster": {"ps": ["h0:2222"], "worker": ["h1:2222", "h2:2222"]},
     "task": {"type": "worker", "index": 0}}
No cluster at all means one machine.
"""
import dataclasses
import json
import os

import config
from config import ConfigError


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """This process's place in a cluster. Worker 0 is the chief (the only one writing files)."""
    ps_hosts: tuple
    worker_hosts: tuple
    job_name: str
    task_index: int

    @property
    def is_chief(self):
        return self.job_name == 'worker' and self.task_index == 0

    @property
    def num_workers(self):
        return len(self.worker_hosts)

    def as_cluster_dict(self):
        return {'ps': list(self.ps_hosts), 'worker': list(self.worker_hosts)}


def build_parser():
    p = config.build_parser('Train CapsNet on several devices (towers) and/or several machines.',
                            'python -m dist_version.distributed_train')
    a = p.add_argument
    a('--num_gpu', type=int, default=1,
      help='towers on this machine: one per GPU (or per CPU copy when there is no GPU)')
    a('--batch_size_per_gpu', type=int, default=128,
      help='batch of each tower; --batch_size becomes num_gpu x batch_size_per_gpu')
    a('--thread_per_gpu', type=int, default=4,
      help='input pipeline parallel calls per tower (replaces --num_threads)')
    a('--ps_hosts', default='', help='comma-separated host:port of the parameter servers (cluster only)')
    a('--worker_hosts', default='', help='comma-separated host:port of the workers; worker 0 is the chief')
    a('--job_name', default='', help='this process\'s job in the cluster: ps or worker')
    a('--task_index', type=int, default=0, help='this process\'s index within its job')
    a('--sync_timeout', type=float, default=600.0,
      help='seconds a worker waits for the others (startup, each step) before stopping with an error; '
           'must exceed the chief\'s validation time')
    return p


def parse(argv=None, environ=None):
    """Validated flags plus the cluster task (None on one machine)."""
    cfg = config.parse(argv, build_parser())
    for name in ('num_gpu', 'batch_size_per_gpu', 'thread_per_gpu'):
        if getattr(cfg, name) < 1:
            raise ConfigError('--%s must be at least 1, got %s' % (name, getattr(cfg, name)))
    if cfg.sync_timeout <= 0:
        raise ConfigError('--sync_timeout must be > 0 seconds, got %s' % cfg.sync_timeout)
    # The loop of main.py reads batch_size and num_threads: make them the per-machine totals.
    cfg.batch_size = cfg.num_gpu * cfg.batch_size_per_gpu
    cfg.num_threads = cfg.num_gpu * cfg.thread_per_gpu
    task = cluster_task(cfg, os.environ if environ is None else environ)
    return cfg, task


def _hosts(text):
    return tuple(h.strip() for h in text.split(',') if h.strip())


def cluster_task(cfg, environ):
    if cfg.worker_hosts or cfg.ps_hosts or cfg.job_name:
        task = ClusterTask(_hosts(cfg.ps_hosts), _hosts(cfg.worker_hosts), cfg.job_name, cfg.task_index)
        source = 'flags'
    elif environ.get('TF_CONFIG'):
        task = _from_tf_config(environ['TF_CONFIG'])
        source = 'TF_CONFIG'
    else:
        return None
    _check(task, source)
    return task


def _from_tf_config(text):
    try:
        spec = json.loads(text)
        cluster, task = spec['cluster'], spec['task']
        return ClusterTask(tuple(cluster.get('ps', ())), tuple(cluster.get('worker', ())),
                           str(task['type']), int(task['index']))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError('TF_CONFIG is not {"cluster": {"ps": [...], "worker": [...]}, "task": '
                          '{"type": ..., "index": ...}} (%s: %s)' % (type(e).__name__, e)) from None


def _check(task, source):
    if not task.worker_hosts:
        raise ConfigError('a cluster needs at least one worker (%s: --worker_hosts=host:port,...)' % source)
    if not task.ps_hosts:
        raise ConfigError('a cluster needs a parameter server to hold the variables '
                          '(%s: --ps_hosts=host:port)' % source)
    if task.job_name not in ('ps', 'worker'):
        raise ConfigError('job name must be ps or worker, got %r (%s: --job_name)' % (task.job_name, source))
    hosts = task.ps_hosts if task.job_name == 'ps' else task.worker_hosts
    if not 0 <= task.task_index < len(hosts):
        raise ConfigError('task index %d is outside the %d %s host(s) (%s: --task_index)'
                          % (task.task_index, len(hosts), task.job_name, source))
