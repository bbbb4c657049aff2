"""Classify your own digit images with a trained checkpoint.

    python predict.py my_digits/                          # every image in the folder
    python predict.py seven.png scan.jpg                  # black ink on white paper is inverted by itself
    python predict.py light_digit_on_grey.png --invert=False   # unless told not to
    python predict.py t10k-images-idx3-ubyte.gz --output predictions.csv
    python predict.py a.png --reconstructions recon/      # input | reconstruction PNGs

Prints per image the predicted class and the capsule lengths (the class scores). The model is
rebuilt from logdir/flags.json, so the architecture flags of training need not be repeated. A model
trained on other images than MNIST's (--dataset folder, cifar10, smallnorb) gets each image as its
training did: converted to its channels, resized to its image size, centre-cropped; the predicted
class is printed by name.
A file that cannot be read gets one `error:` line and the others are still predicted; the exit
status is then 1.
"""
import csv
import io
import os
import sys

import config
from runtime import cli, files
from runtime.errors import UserError, run_cli
from runtime.model_sources import LOAD_CHOICES
from runtime.quiet_start import import_tensorflow_quietly

BATCH_SIZE = 100
# digit_images.FITS, spelled out here because that module loads TensorFlow and --help or a bad flag
# must answer without it (a test keeps the copies equal).
FIT_CHOICES = ('auto', 'mnist', 'resize')


def build_parser():
    p = cli.command_parser('Predict digits of PNG/JPEG/GIF/BMP images, folders of them, or IDX files.',
                           command='python predict.py')
    p.add_argument('images', nargs='+', help='image files, folders of images, or IDX image files')
    p.add_argument('--logdir', default='logdir', help='training folder with checkpoints and flags.json')
    p.add_argument('--checkpoint', default='latest', choices=LOAD_CHOICES,
                   help='the newest checkpoint of --logdir, the one of best validation accuracy, or the '
                        'trained model shipped in pretrained/')
    p.add_argument('--invert', type=config.str2bool, nargs='?', const=True, default=None, metavar='BOOL',
                   help='True: images are dark ink on light paper (scans), invert them; False: never invert; '
                        'not given: invert each image file whose border is light, with a note')
    p.add_argument('--fit', default='auto', choices=FIT_CHOICES,
                   help='auto: 28x28 as is, others like MNIST (20x20 box, centre of mass); see digit_images.py')
    p.add_argument('--output', default=None, help='also write all predictions to this CSV file')
    p.add_argument('--reconstructions', default=None,
                   help='folder for one PNG per image: the 28x28 input | the reconstruction of its class')
    return p


def check_outputs(args):
    """Refuses outputs that cannot be written before any image is read or predicted: otherwise the
    mistake would surface as an error after all the predictions were printed."""
    if args.reconstructions:
        cli.check_output_folders((args.reconstructions, '--reconstructions'))
    if args.output:
        cli.check_output_file(args.output, '--output')


def expand_paths(paths):
    """Files to read, in order: folders give their image and IDX files (sorted); (files, notes)."""
    from evaluation import digit_images
    files, notes = [], []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)  # missing or odd files are reported when read
            continue
        names = sorted(n for n in os.listdir(path) if not n.startswith('.')
                       and os.path.isfile(os.path.join(path, n)))
        chosen = [n for n in names if n.lower().endswith(digit_images.IMAGE_EXTENSIONS) or 'idx' in n.lower()]
        files.extend(os.path.join(path, n) for n in chosen)
        if len(chosen) < len(names):
            notes.append('%s: skipped %d file(s) without an image extension' % (path, len(names) - len(chosen)))
    return files, notes


def read_digits(files, reader):
    """(names [N], digits [N, 28, 28], notes [str], errors [str]); an IDX file gives name[k] per image."""
    import numpy as np
    from evaluation import digit_images
    names, digits, notes, errors = [], [], [], []
    for path in files:
        try:
            images, file_notes, from_idx = reader.read(path)
        except digit_images.NotImages as e:
            notes.append('%s: %s' % (path, e))  # e.g. the labels beside the images of an MNIST folder
            continue
        except digit_images.ImageError as e:
            errors.append('%s: %s' % (path, e))
            continue
        notes.extend('%s: %s' % (path, n) for n in file_notes)
        if from_idx:
            names.extend('%s[%d]' % (path, k) for k in range(len(images)))
        else:
            names.append(path)
        digits.append(images)
    digits = np.concatenate(digits) if digits else np.zeros((0, 28, 28))
    return names, digits, notes, errors


def read_as_trained(files, flags):
    """(names, images float [N, h, w, C] in [0, 1], notes, errors) of image files, each prepared as the
    run's training images were: channels converted, resized to their size, centre-cropped."""
    import numpy as np
    import utils
    from model_spec import InputSpec
    from readers import ImageOps
    from runtime import inference
    spec = InputSpec.from_flags(flags)
    size = inference.stored_image_size(flags)
    names, images, notes, errors = [], [], [], []
    with ImageOps() as ops:
        for path in files:
            try:
                with open(path, 'rb') as f:
                    pixels = ops.decode(f.read())                                  # [h, w, c] uint8
            except OSError as e:
                errors.append('%s: cannot read (%s)' % (path, e.strerror or type(e).__name__))
                continue
            except Exception:  # the decoder's InvalidArgumentError: not an image, truncated or corrupt
                errors.append('%s: not a readable PNG, JPEG, GIF or BMP image' % path)
                continue
            if pixels.shape[-1] in (2, 4):
                pixels = pixels[..., :-1]  # alpha is not data
            if spec.channels in (1, 3):
                pixels = ops.to_channels(pixels[None], spec.channels)[0]
            else:  # a stereo model (smallNORB): one photo stands for both cameras
                gray = ops.to_channels(pixels[None], 1)[0]
                pixels = np.repeat(gray, spec.channels, axis=-1)
                notes.append('%s: one image for the model\'s %d channels: repeated' % (path, spec.channels))
            pixels = ops.resize(pixels[None], size)                               # [1, H, W, C]
            images.append(utils.centre_crop(pixels, spec.height, spec.width)[0])  # [h, w, C]
            names.append(path)
    stacked = (np.stack(images).astype(np.float32) / np.float32(255.0) if images
               else np.zeros((0, spec.height, spec.width, spec.channels), np.float32))
    if spec.channels == 1:
        stacked = stacked[..., 0]  # gray [N, h, w], as predict() returns the reconstructions
    return names, stacked, notes, errors


def predict(digits, logdir, which='latest', with_names=False):
    """(predictions int [N], lengths [N, classes], reconstructions [N, H, W(, C)], checkpoint, step),
    and the class names last when with_names."""
    from runtime import inference
    with inference.load_model(logdir, which) as trained:
        model, spec = trained.model, trained.spec
        predictions, lengths, recon = trained.run([model.predictions, model.lengths, model.reconstructions],
                                                  digits, BATCH_SIZE)
        shape = (spec.height, spec.width) + ((spec.channels,) if spec.channels > 1 else ())
        found = predictions, lengths, recon.reshape((-1,) + shape), trained.checkpoint, trained.step
        return found + (trained.class_names,) if with_names else found


def trained_flags(args):
    """The flags the chosen model was trained with (the card's for pretrained/), read quietly."""
    from runtime import inference
    if args.checkpoint == 'pretrained':
        return inference.read_card().get('flags', {})
    return inference.run_flags(args.logdir)


def is_digit_model(flags):
    """True for models of MNIST-shaped gray 28x28 digits (MNIST, Fashion-MNIST, runs made before the input
    was recorded): their images get the MNIST fitting of digit_images. Others get their training's."""
    return flags.get('dataset', 'mnist') in ('mnist', 'fashion-mnist') or not flags.get('input_spec')


def format_line(name, prediction, lengths, class_name=None):
    label = class_name if class_name is not None else '%d' % prediction
    return '%s: %s  lengths %s' % (name, label, ' '.join('%.3f' % x for x in lengths))


def write_csv(path, names, predictions, lengths, recon_paths, class_names=None):
    """One row per image: file,prediction[,class],length_0..length_9[,reconstruction]; written atomically.
    The class column (its name) is there for models of other data than digits."""
    header = ['file', 'prediction'] + (['class'] if class_names else []) + \
        ['length_%d' % k for k in range(lengths.shape[1])]
    if recon_paths:
        header.append('reconstruction')
    text = io.StringIO()
    w = csv.writer(text, lineterminator='\n')
    w.writerow(header)
    for k, name in enumerate(names):
        row = [name, int(predictions[k])] + ([class_names[predictions[k]]] if class_names else [])
        row += ['%.6f' % x for x in lengths[k]]
        w.writerow(row + ([recon_paths[k]] if recon_paths else []))
    files.atomic_write(path, text.getvalue())


def write_reconstructions(folder, names, digits, recon):
    """input | reconstruction as one H x 2W PNG per image (28x56 for digits); returns the paths, in order."""
    import numpy as np
    from evaluation import digit_images
    paths, used = [], set()
    for name, digit, rec in zip(names, digits, recon):
        base = os.path.basename(name)
        if base.lower().endswith(digit_images.IMAGE_EXTENSIONS):
            base = os.path.splitext(base)[0]
        stem = ''.join(c if c.isalnum() or c in '-_.' else '_' for c in base.rstrip(']'))
        candidate, n = stem, 1
        while candidate in used:  # two files of the same name in different folders
            n += 1
            candidate = '%s-%d' % (stem, n)
        used.add(candidate)
        path = os.path.join(folder, candidate + '.png')
        side_by_side = files.displayable(np.concatenate([digit, rec], axis=1)[None])[0]  # [H, 2W(, 3)]
        files.write_pixels(path, files.to_uint8(side_by_side))
        paths.append(path)
    return paths


def run(args):
    """Everything the command does; returns the exit status."""
    check_outputs(args)
    # Quiet also hides the decoder warnings a corrupt image triggers; our own error line names the file.
    import_tensorflow_quietly()
    from evaluation import digit_images
    files, notes = expand_paths(args.images)
    flags = trained_flags(args)
    if is_digit_model(flags):
        reader = digit_images.DigitReader(args.fit, args.invert)
        try:
            names, digits, file_notes, errors = read_digits(files, reader)
        finally:
            reader.close()
    else:
        if args.invert is not None or args.fit != 'auto':
            notes.append('--invert and --fit are for digit models; this model takes images as its training '
                         'did (channels, size, centre crop)')
        names, digits, file_notes, errors = read_as_trained(files, flags)
    for note in notes + file_notes:
        print('note: %s' % note, file=sys.stderr)
    for error in errors:
        print('error: %s' % error, file=sys.stderr)
    if not names:
        raise UserError('no image to predict among %d file(s)' % len(files))
    predictions, lengths, recon, checkpoint, step, class_names = predict(digits, args.logdir, args.checkpoint,
                                                                         with_names=True)
    print('checkpoint %s (step %d)' % (checkpoint, step))
    for k, name in enumerate(names):
        print(format_line(name, predictions[k], lengths[k], class_names[predictions[k]]))
    recon_paths = (write_reconstructions(args.reconstructions, names, digits, recon)
                   if args.reconstructions else None)
    if args.output:
        write_csv(args.output, names, predictions, lengths, recon_paths,
                  None if is_digit_model(flags) else class_names)
    return 1 if errors else 0


def main(argv=None):
    return run_cli(lambda: run(build_parser().parse_args(sys.argv[1:] if argv is None else argv)))


if __name__ == '__main__':
    sys.exit(main())
