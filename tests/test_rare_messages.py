"""Messages of docs/troubleshooting.md that no other test triggers: each produced, one line, as documented."""
import numpy as np
import pytest
from conftest import write_idx

import utils
from runtime.errors import TrainingInterrupted, run_cli


def test_ctrl_c_before_training_is_one_line_and_exit_130(capsys):
    def body():
        raise KeyboardInterrupt  # as a Ctrl-C while the data loads or the graph is built
    assert run_cli(body) == TrainingInterrupted.exit_code == 130
    assert capsys.readouterr().err == 'error: interrupted before training started; no checkpoint was needed\n'


@pytest.mark.parametrize('content, problem', [(b'\0\0', 'is too short to be an IDX file'),
                                              (b'\0\0\x08\x03\0\0', 'is truncated inside its header')])
def test_idx_header_damage_is_named(tmp_path, content, problem):
    path = tmp_path / 'train-images-idx3-ubyte'
    path.write_bytes(content)
    with pytest.raises(utils.DataError, match=problem) as refused:
        utils.read_idx(str(path), 3)
    assert 'download_data.py' in str(refused.value)


def test_checksum_failure_mentions_verify_data_for_own_files(tmp_path):
    # Your own labels under MNIST's file name: a valid IDX file whose checksum is not the official one.
    path = write_idx(tmp_path / 'train-labels-idx1-ubyte.gz', np.arange(10) % 10)
    with pytest.raises(utils.DataError, match='or pass --verify_data=False for your own files') as refused:
        utils._verify_checksums('mnist', [str(path)])
    assert '\n' not in str(refused.value) and 'download_data.py' in str(refused.value)
