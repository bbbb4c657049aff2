"""What capsNet builds from: the model's hyper-parameters (ModelConfig) and the shape of its input
(InputSpec), with MNIST's as the defaults.

Plain dataclasses, free of TensorFlow and of the rest of the project: config.py takes the flags'
defaults from here while it parses them, before TensorFlow loads, and the model layer (capsLayer,
capsNet, this package) imports nothing built on top of it.
"""
import dataclasses

# MNIST (and Fashion-MNIST): 28 x 28 grey images of 10 classes. The original model's shapes follow
# from these, and runs that recorded no input spec were made on them.
IMAGE_SIZE = 28
NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the model and its loss: the one source of their defaults (the original script
    and the paper). The flags take their defaults from here, and capsNet builds from an instance, so
    the model itself reads no flags."""
    m_plus: float = 0.9
    m_minus: float = 0.1
    lambda_val: float = 0.5
    iter_routing: int = 3
    mask_with_y: bool = True
    stddev: float = 0.01
    # The paper's 0.0005 x sum of squared errors, as a weight on the mean over 784 pixels: 0.0005 x 784.
    regularization_scale: float = 0.392
    learning_rate: float = 0.001
    lr_schedule: str = 'constant'
    # The official code's exponential decay: x lr_decay_rate every lr_decay_steps steps, continuously.
    lr_decay_steps: int = 2000
    lr_decay_rate: float = 0.96
    primary_caps_relu: bool = True
    stop_gradient_routing: bool = True
    leaky_routing: bool = False
    digit_caps_bias: bool = False
    # Capsule types of PrimaryCaps (channels of 8-D capsules per grid cell): the paper's 32 for MNIST,
    # 64 for CIFAR-10 (section 7).
    primary_caps_types: int = 32
    # How the convolutions are computed: 'conv' (tf.nn.conv2d) or 'matmuls' (PrimaryCaps as
    # capsLayer.stride2_conv_as_matmuls, Conv1 as capsLayer.conv_with_matmul_gradients). Same variables
    # and values; only the speed differs.
    primary_caps_impl: str = 'conv'
    # With 'matmuls', how PrimaryCaps' input gradient is computed: 'matmuls' (a fold of products) or
    # 'conv' (the library's Conv2DBackpropInput). The same values; only the speed differs.
    primary_caps_input_gradient: str = 'matmuls'
    # With 'matmuls', how its forward pass is computed: 'matmuls' (nine kernel-row products) or 'conv'
    # (the library's tf.nn.conv2d). The same values; only the speed differs.
    primary_caps_forward: str = 'matmuls'

    @classmethod
    def from_flags(cls, flags):
        """Picks the fields this class knows from any object with matching attributes."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{n: getattr(flags, n) for n in names if hasattr(flags, n)})


MODEL_DEFAULTS = ModelConfig()
# Fields that choose how, not what, the model computes: a run may change them when it resumes.
SPEED_FIELDS = ('primary_caps_impl', 'primary_caps_input_gradient', 'primary_caps_forward')


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What the network sees: image height, width, channels and the number of classes. capsNet builds
    its shapes from it; the readers' arrays and --image_size/--channels/--crop decide it."""
    height: int = IMAGE_SIZE
    width: int = IMAGE_SIZE
    channels: int = 1
    classes: int = NUM_CLASSES

    @property
    def values(self):
        """Pixel values per image: the decoder's output size."""
        return self.height * self.width * self.channels

    @classmethod
    def from_flags(cls, flags):
        """The spec a run recorded in flags.json ('input_spec'); MNIST's for runs made before it existed
        (and the pretrained card), which were all MNIST-shaped."""
        recorded = (flags or {}).get('input_spec') or {}
        return cls(**{f.name: int(recorded[f.name]) for f in dataclasses.fields(cls) if f.name in recorded})


MNIST_SPEC = InputSpec()
