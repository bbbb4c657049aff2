"""CIFAR-10 as published for Python: the cifar-10-batches-py/ folder, or the cifar-10-python.tar.gz of it.

Each batch file is a pickled dict: b'data' uint8 [N, 3072], every row the 32x32 red plane, then the
green, then the blue, each row-major; b'labels' N ints in 0..9. batches.meta holds b'label_names'.
Training is data_batch_1..5 (50 000 images), testing test_batch (10 000).
Source: https://www.cs.toronto.edu/~kriz/cifar.html
"""
import io
import os
import pickle
import tarfile

import numpy as np

from readers import DataError, Dataset

FOLDER = 'cifar-10-batches-py'
ARCHIVE = 'cifar-10-python.tar.gz'
FILES = {'train': ['data_batch_%d' % k for k in range(1, 6)], 'test': ['test_batch']}
META = 'batches.meta'
SIDE, CHANNELS, NUM_CLASSES = 32, 3, 10
ROW = SIDE * SIDE * CHANNELS
# The label order of batches.meta, used when that file is absent.
CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']
FIX = 're-download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and give its ' \
      'folder (or the extracted %s/) as --data_dir' % FOLDER
# A pickle can run any code it names; these batches need the array rebuilders of NumPy and nothing more
# (_codecs.encode: how Python 3 writes bytes at protocol 2, for copies re-pickled by Python 3).
ALLOWED = {('_codecs', 'encode'), ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
           ('numpy', 'ndarray'), ('numpy', 'dtype'), ('numpy.core.multiarray', 'scalar'),
           ('numpy._core.multiarray', 'scalar')}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError('refusing %s.%s' % (module, name))
        return super().find_class(module, name)


def _unpickle(raw, path):
    try:
        # encoding='bytes': the published files were pickled by Python 2, their keys are bytes.
        value = _BatchUnpickler(io.BytesIO(raw), encoding='bytes').load()
    except Exception as e:  # a damaged pickle raises anything from EOFError to ValueError
        raise DataError('%s is not a CIFAR-10 python batch (%s: truncated or another file); %s'
                        % (path, type(e).__name__, FIX)) from None
    if not isinstance(value, dict):
        raise DataError('%s is not a CIFAR-10 python batch (no dict inside); %s' % (path, FIX))
    return value


def _sources(data_dir):
    """{file name: (raw bytes or a reader of them, shown path)} of the batches in data_dir."""
    for folder in (os.path.join(data_dir, FOLDER), data_dir):
        if os.path.isfile(os.path.join(folder, FILES['test'][0])) or \
                os.path.isfile(os.path.join(folder, FILES['train'][0])):
            return _FolderSource(folder)
    for archive in (os.path.join(data_dir, ARCHIVE), data_dir):
        if os.path.isfile(archive) and archive.endswith(('.tar.gz', '.tgz')):
            return _ArchiveSource(archive)
    raise DataError('no CIFAR-10 batches in %s (expected %s/data_batch_1 ... test_batch, or %s); %s'
                    % (data_dir, FOLDER, ARCHIVE, FIX))


class _FolderSource:
    def __init__(self, folder):
        self.folder = folder

    def read(self, name, required=True):
        path = os.path.join(self.folder, name)
        if not os.path.isfile(path):
            if not required:
                return None, path
            raise DataError('missing %s; %s' % (path, FIX))
        with open(path, 'rb') as f:
            return f.read(), path


class _ArchiveSource:
    def __init__(self, archive):
        self.archive = archive
        try:
            with tarfile.open(archive, 'r:gz') as tar:
                self.members = {os.path.basename(m.name): tar.extractfile(m).read()
                                for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError('cannot read %s (%s: truncated or not a .tar.gz); %s'
                            % (archive, type(e).__name__, FIX)) from None

    def read(self, name, required=True):
        shown = '%s:%s/%s' % (self.archive, FOLDER, name)
        if name not in self.members:
            if not required:
                return None, shown
            raise DataError('%s holds no %s; %s' % (self.archive, name, FIX))
        return self.members[name], shown


def read_split(data_dir, split):
    """Dataset of the 'train' or 'test' batches: images uint8 [N, 32, 32, 3], labels int64 [N]."""
    source = _sources(data_dir)
    images, labels = [], []
    for name in FILES[split]:
        raw, path = source.read(name)
        batch = _unpickle(raw, path)
        data, batch_labels = batch.get(b'data'), batch.get(b'labels')
        if data is None or batch_labels is None:
            raise DataError('%s has no b\'data\' or b\'labels\' entry; %s' % (path, FIX))
        data = np.asarray(data)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW:
            raise DataError('%s holds %s %s data, expected uint8 [N, %d] (32x32 RGB rows); %s'
                            % (path, data.dtype, list(data.shape), ROW, FIX))
        batch_labels = np.asarray(batch_labels, np.int64)
        if batch_labels.shape != (len(data),):
            raise DataError('%s has %d images but %d labels; %s' % (path, len(data), batch_labels.size, FIX))
        if len(batch_labels) and (batch_labels.min() < 0 or batch_labels.max() >= NUM_CLASSES):
            raise DataError('%s has labels outside 0..9; %s' % (path, FIX))
        # Row = R plane, G plane, B plane: [N, 3, 32, 32] -> channels last [N, 32, 32, 3].
        images.append(data.reshape(-1, CHANNELS, SIDE, SIDE).transpose(0, 2, 3, 1))
        labels.append(batch_labels)
    return Dataset(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels),
                   _class_names(source))


def _class_names(source):
    raw, path = source.read(META, required=False)
    if raw is None:
        return list(CLASS_NAMES)
    names = _unpickle(raw, path).get(b'label_names')
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise DataError('%s has no list of %d b\'label_names\'; %s' % (path, NUM_CLASSES, FIX))
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
