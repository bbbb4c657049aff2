"""Messages of docs/troubleshooting.md that no other test triggers: each produced, one line, as documented."""
import pytest

import download_data
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


def test_checksum_failure_mentions_verify_data_for_own_files(tmp_path, monkeypatch):
    def mismatch(path, dataset, filename):
        raise download_data.DownloadError('%s: checksum mismatch; re-download it' % path)

    monkeypatch.setattr(download_data, 'verify_file', mismatch)
    with pytest.raises(utils.DataError, match='or pass --verify_data=False for your own files'):
        utils._verify_checksums('mnist', [(str(tmp_path / 'x.gz'), 'x')])
