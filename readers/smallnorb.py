"""smallNORB in its published binary matrix files (LeCun, Huang & Bottou 2004).

    smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat   uint8 [24300, 2, 96, 96]  stereo pairs
    smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat   int32 [24300]             category 0..4
    smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat}.mat                         the same for testing

A file is: magic (int32, little-endian; 0x1E3D4C55 = uint8 data, 0x1E3D4C54 = int32), the number of
dimensions (int32), the dimensions (int32 each, at least 3 stored even when there are fewer: the
labels' [24300] is stored as 24300, 1, 1), then the data. A .gz copy of each file is read as well.
The official code feeds both stereo images as 2 channels (input_data/norb/norb_input_record.py of
the paper's code: depth 2), so that is the default here; --channels 1 keeps the first camera only.
Source: https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/
"""
import gzip
import os
import struct
import zlib

import numpy as np

from readers import DataError, Dataset
from runtime.errors import ConfigError

MAGIC = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.dtype('<i4')}
PREFIX = {'train': 'smallnorb-5x46789x9x18x6x2x96x96-training', 'test': 'smallnorb-5x01235x9x18x6x2x96x96-testing'}
# Category order of the dataset's documentation.
CLASS_NAMES = ['animal', 'human', 'airplane', 'truck', 'car']
SIDE = 96
FIX = 're-download it from https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/ (gunzip is optional)'


def find_file(data_dir, split, kind):
    """The -dat.mat or -cat.mat file of a split, or its .gz."""
    stem = '%s-%s.mat' % (PREFIX[split], kind)
    for name in (stem, stem + '.gz'):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise DataError('missing %s in %s; download it from https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/ '
                    'into that folder (or give its folder as --data_dir)' % (stem, data_dir))


def read_matrix(path):
    """The array of one binary matrix file, its header and size checked."""
    try:
        opener = gzip.open if path.endswith('.gz') else open
        with opener(path, 'rb') as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError('cannot read %s (%s: truncated or corrupt); %s' % (path, type(e).__name__, FIX)) from None
    if len(raw) < 8:
        raise DataError('%s is too short to be a smallNORB file; %s' % (path, FIX))
    magic, ndim = struct.unpack('<ii', raw[:8])
    if magic not in MAGIC or not 1 <= ndim <= 16:
        raise DataError('%s has the header %s, not a smallNORB uint8 or int32 matrix (magic 1e3d4c55 or '
                        '1e3d4c54); %s' % (path, raw[:8].hex(), FIX))
    stored = max(ndim, 3)
    header = 8 + 4 * stored
    if len(raw) < header:
        raise DataError('%s is truncated inside its header; %s' % (path, FIX))
    dims = struct.unpack('<' + 'i' * stored, raw[8:header])[:ndim]
    dtype = np.dtype(MAGIC[magic])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError('%s holds %d bytes but its header %s needs %d (truncated or padded); %s'
                        % (path, len(raw), list(dims), expected, FIX))
    return np.frombuffer(raw, dtype, offset=header).reshape(dims)


def read_split(data_dir, split, channels=None):
    """Dataset of a split: images uint8 [N, 96, 96, 2] (both cameras) or [N, 96, 96, 1] (channels=1)."""
    dat_path, cat_path = find_file(data_dir, split, 'dat'), find_file(data_dir, split, 'cat')
    pairs, labels = read_matrix(dat_path), read_matrix(cat_path)
    if pairs.dtype != np.uint8 or pairs.ndim != 4 or pairs.shape[1:] != (2, SIDE, SIDE):
        raise DataError('%s holds %s %s, expected uint8 [N, 2, 96, 96] stereo pairs; %s'
                        % (dat_path, pairs.dtype, list(pairs.shape), FIX))
    if labels.dtype.kind != 'i' or labels.shape != (len(pairs),):
        raise DataError('%s holds %s %s, expected int32 [%d] categories; %s'
                        % (cat_path, labels.dtype, list(labels.shape), len(pairs), FIX))
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise DataError('%s has categories outside 0..4; %s' % (cat_path, FIX))
    if channels == 3:
        raise ConfigError('--channels 3 does not fit smallNORB (gray stereo pairs): leave it out for both '
                        'cameras as 2 channels, or give --channels 1 for the first camera')
    kept = pairs[:, :1] if channels == 1 else pairs
    images = np.ascontiguousarray(kept.transpose(0, 2, 3, 1))                  # [N, 96, 96, 1 or 2]
    return Dataset(images, labels.astype(np.int64), list(CLASS_NAMES))
