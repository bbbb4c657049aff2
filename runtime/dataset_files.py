"""What the MNIST and Fashion-MNIST files must be: names, shapes, checksums, official sources.

`verify_file` checks one IDX file against these facts, gzipped (as published) or already
decompressed (as `gunzip data/mnist/*.gz` leaves it). Used by download_data.py before it keeps a
download and by utils.py before training or testing. No TensorFlow here.
"""
import gzip
import hashlib
import os
import struct
import urllib.error
import zlib

from runtime.errors import UserError

FILES = (
    'train-images-idx3-ubyte.gz',
    'train-labels-idx1-ubyte.gz',
    't10k-images-idx3-ubyte.gz',
    't10k-labels-idx1-ubyte.gz',
)
CHUNK = 1 << 20


def idx_entry(shape, sha256=None, gz_md5=None):
    """The facts of one file. An IDX file of unsigned bytes is a 4-byte magic, one 4-byte count per
    dimension, then the data, so the shape fixes both header and size."""
    n = 1
    for dim in shape:
        n *= dim
    return {'shape': shape, 'size': 4 + 4 * len(shape) + n,
            'sha256': sha256, 'gz_md5': gz_md5}


# A .gz file is accepted when EITHER checksum matches: 'sha256' covers the decompressed IDX bytes,
# so mirrors that re-gzip the data and gunzipped folders still verify; 'gz_md5' is what the dataset
# authors published for their own .gz files.
DATASETS = {
    'mnist': {
        # sha256 of the decompressed official files (computed from the originals); gz_md5 are the md5
        # sums of the original .gz files on yann.lecun.com, as published and used by torchvision
        # and others.
        'train-images-idx3-ubyte': idx_entry(
            (60000, 28, 28),
            'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
            'f68b3c2dcbeaaa9fbdd348bbdeb94873'),
        'train-labels-idx1-ubyte': idx_entry(
            (60000,),
            '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
            'd53e105ee54ea40749a09fcbcd1e9432'),
        't10k-images-idx3-ubyte': idx_entry(
            (10000, 28, 28),
            '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
            '9fb629c4189551a2d022fa330f9573f3'),
        't10k-labels-idx1-ubyte': idx_entry(
            (10000,),
            'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
            'ec29112dd5afa0611ce80d1b7f02629c'),
    },
    'fashion-mnist': {
        # gz_md5 from the zalandoresearch/fashion-mnist README. No trustworthy published checksum of
        # the decompressed files was found, so neither a re-compressed Fashion-MNIST mirror nor a
        # gunzipped copy can be verified.
        'train-images-idx3-ubyte': idx_entry(
            (60000, 28, 28), gz_md5='8d4fb7e6c68d591d4c3dfef9ec88bf0d'),
        'train-labels-idx1-ubyte': idx_entry(
            (60000,), gz_md5='25c81989df183df01b3e8a0aad5dffbe'),
        't10k-images-idx3-ubyte': idx_entry(
            (10000, 28, 28), gz_md5='bef4ecab320f06d8554ea6380940ec79'),
        't10k-labels-idx1-ubyte': idx_entry(
            (10000,), gz_md5='bb300cfdad3c16e7a12a480ee83cd310'),
    },
}

# Tried in order; the original MNIST site often refuses scripted downloads, hence the widely used
# copies after it.
SOURCES = {
    'mnist': (
        'http://yann.lecun.com/exdb/mnist/',
        'https://ossci-datasets.s3.amazonaws.com/mnist/',
        'https://storage.googleapis.com/cvdf-datasets/mnist/',
    ),
    'fashion-mnist': (
        'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
        'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/'
        'master/data/fashion/',
    ),
}


class DataFileError(UserError):
    """A data file or dataset choice the user can fix; the message is one line saying how."""


class UnverifiableFile(DataFileError):
    """A decompressed file of a dataset whose only published checksums cover the .gz files."""


def stem(filename):
    """'train-images-idx3-ubyte' for that name with or without .gz, with or without a folder."""
    name = os.path.basename(str(filename))
    return name[:-3] if name.endswith('.gz') else name


def dataset_table(dataset):
    if dataset not in DATASETS:
        raise DataFileError(f"unknown dataset {dataset!r}; choose one of: "
                            f"{', '.join(sorted(DATASETS))}")
    return DATASETS[dataset]


def reason(exc):
    """The short human cause of an OS or network error, for a one-line message."""
    if isinstance(exc, urllib.error.HTTPError):
        return f'HTTP {exc.code} {exc.reason}'
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _file_info(dataset, filename):
    info = dataset_table(dataset).get(stem(filename))
    if info is None:
        raise DataFileError(f'{filename!r} is not a file of the {dataset} '
                            f'dataset; expected one of: {", ".join(FILES)}')
    return info


def problem_with(path, dataset, filename):
    """Why `path` is not the expected file, or None if it is.

    `filename` decides the format: a name ending in .gz is read as gzip, any other name as the
    decompressed IDX bytes (only the content sha256 can vouch for those).
    """
    info = _file_info(dataset, filename)
    compressed = str(filename).endswith('.gz')
    try:
        gz_md5 = hashlib.md5()
        if compressed:
            with open(path, 'rb') as f:
                for chunk in iter(lambda: f.read(CHUNK), b''):
                    gz_md5.update(chunk)

        shape = info['shape']
        content = hashlib.sha256()
        size = 0
        with (gzip.open if compressed else open)(path, 'rb') as f:
            header = f.read(4 + 4 * len(shape))
            # Magic is 0x08 (unsigned byte) in byte 3, dimension count in 4.
            expected = struct.pack('>I', 0x0800 | len(shape)) + struct.pack(
                '>' + 'I' * len(shape), *shape)
            if header != expected:
                return (f'IDX header {header.hex()} is not the expected '
                        f'{expected.hex()} (wrong or damaged file)')
            content.update(header)
            size = len(header)
            for chunk in iter(lambda: f.read(CHUNK), b''):
                content.update(chunk)
                size += len(chunk)
                if size > info['size']:
                    break  # no need to read the rest of a wrong file
    except FileNotFoundError:
        return 'file not found'
    except (OSError, EOFError, zlib.error) as e:
        if compressed:
            return f'not a readable gzip file ({reason(e)})'
        return f'not readable ({reason(e)})'

    if size != info['size']:
        found = 'more than' if size > info['size'] else f'only {size}'
        what = 'decompressed size' if compressed else 'size'
        return (f'{what} is {found} bytes, expected '
                f'{info["size"]} (truncated or wrong file)')
    if compressed and info['gz_md5'] and gz_md5.hexdigest() == info['gz_md5']:
        return None
    if info['sha256'] and content.hexdigest() == info['sha256']:
        return None
    if info['sha256']:
        return (f'checksum mismatch: content sha256 {content.hexdigest()}, '
                f'expected {info["sha256"]}')
    return (f'checksum mismatch: .gz md5 {gz_md5.hexdigest()}, expected '
            f'{info["gz_md5"]} (only the official .gz files can be verified)')


def verify_file(path, dataset, filename):
    """Raise DataFileError unless `path` holds the expected `filename` (gzipped or not)."""
    folder = os.path.dirname(str(path)) or '.'
    info = _file_info(dataset, filename)
    if not str(filename).endswith('.gz') and not info['sha256']:
        raise UnverifiableFile(
            f'{path}: a decompressed {dataset} file cannot be verified (only checksums of the '
            f'official .gz files are published); keep the .gz file (python download_data.py '
            f'--dataset {dataset} --save_to {folder}) or pass --verify_data=False')
    found = problem_with(path, dataset, filename)
    if found:
        raise DataFileError(
            f'{path}: {found}; re-download it with: python download_data.py '
            f'--dataset {dataset} --save_to {folder} --force')
