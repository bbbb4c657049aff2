"""docs/troubleshooting.md and the code agree: every exit code is documented, every documented message
is still produced by the code, and the tests check it."""
import re

from conftest import ROOT, project_python_files

from runtime.errors import EXIT_CODES

DOC = ROOT / 'docs' / 'troubleshooting.md'


def table_rows(heading):
    """Cells of the rows of the first table under `## heading`."""
    section = DOC.read_text().split('## %s\n' % heading, 1)[1].split('\n## ', 1)[0]
    rows = [line.strip().strip('|').split(' | ') for line in section.splitlines() if line.startswith('|')]
    return [[cell.strip() for cell in row] for row in rows[2:]]  # after the header and the |---| line


def source_text(folders_and_files):
    """The text of the .py files, with implicitly joined string literals joined (a message may span lines)."""
    text = '\n'.join(p.read_text() for p in folders_and_files).replace("\\'", "'")
    return re.sub(r"(['\"])\s*\n\s*f?\1", '', text)


def text_of_the_code():
    return source_text(p for p in project_python_files() if 'tests' not in p.relative_to(ROOT).parts)


def texts_of_the_tests():
    """{file name: text} of every test file but this one, which quotes messages without triggering them."""
    return {p.name: source_text([p]) for p in (ROOT / 'tests').glob('test_*.py')
            if p.name != 'test_troubleshooting_doc.py'}


def quoting_files(message, tests):
    """The test files that quote the longest literal fragment of `message` (its own words, not a few
    words other messages share): a message counts as tested only where a test spells it out."""
    pieces = fragments(message)
    if not pieces:
        return []
    longest = max(pieces, key=len)
    return [name for name, text in tests.items() if longest in text]


def documented_messages():
    """(exit code, message) for each `message` in backticks of the messages table."""
    found = []
    for row in table_rows('Messages'):
        for message in re.findall(r'`([^`]+)`', row[1]):
            found.append((int(row[0]), message))
    return found


def fragments(message):
    """The literal pieces of a documented message (between placeholders and brackets), as the code spells them."""
    pieces = [piece.strip(' ;:,') for piece in re.split(r'<[^>]*>|[()]', message)]
    return [piece for piece in pieces if len(piece) >= 4]


def test_every_exit_code_is_documented_with_its_meaning():
    documented = {int(row[0]): row[1] for row in table_rows('Exit codes')}
    assert sorted(documented) == sorted(EXIT_CODES)
    assert all(len(meaning) > 3 for meaning in documented.values())


def test_every_documented_message_is_produced_by_the_code_and_checked_by_a_test():
    messages = documented_messages()
    assert len(messages) >= 25
    code, tests = text_of_the_code(), texts_of_the_tests()
    missing_in_code, untested = [], []
    for exit_code, message in messages:
        assert exit_code in EXIT_CODES, message
        for piece in fragments(message):
            if piece not in code:
                missing_in_code.append(piece)
        if not quoting_files(message, tests):
            untested.append(message)
    assert not missing_in_code, 'documented but no longer in the code: %s' % missing_in_code
    assert not untested, 'documented but no test checks it: %s' % untested


def test_a_message_is_tested_only_where_a_test_quotes_its_longest_fragment():
    message = 'checkpoint <X> cannot be read (<REASON>); pick another one or retrain'
    assert quoting_files(message, {'a.py': "'cannot be read'", 'b.py': "'one or retrain'"}) == []
    assert quoting_files(message, {'a.py': "'no checkpoint' in err", 'b.py': "'pick another one or retrain'"}) == [
        'b.py']


def test_fragments_are_read_between_placeholders():
    assert fragments('interrupted at step <N>; checkpoint saved in <LOGDIR>; run the same command') == [
        'interrupted at step', 'checkpoint saved in', 'run the same command']
    assert fragments('worker <K>: no progress for <S>s (<ERROR>): restart every task (ps included) at once') == [
        'worker', 'no progress for', 'restart every task', 'ps included', 'at once']

