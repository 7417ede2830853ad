"""The MAC counter on hand-computed models and against published figures."""

import pytest

import zoo


def test_hand_computed_small_model():
    import keras
    from keras import layers

    x = keras.Input((10, 10, 4))
    y = layers.Conv2D(8, 3, padding="valid")(x)                  # 8x8x8 outputs, 3*3*4 each: 18432
    y = layers.Conv2D(8, 3, padding="same", groups=2)(y)         # 8x8x8 outputs, 3*3*(8/2) each: 18432
    y = layers.DepthwiseConv2D(3, padding="same")(y)             # 8x8x8 outputs, 3*3 each: 4608
    y = layers.SeparableConv2D(16, 1)(y)                         # depthwise 512 + pointwise 8*8*8*16: 8704
    y = layers.BatchNormalization()(y)                           # not counted
    y = layers.ReLU()(y)
    y = layers.MaxPooling2D()(y)                                  # not counted
    y = layers.Conv2DTranspose(2, 2, strides=2)(y)               # 4*4*16 inputs x 2*2 kernel x 2: 2048
    y = layers.Flatten()(y)
    y = layers.Dense(5)(y)                                        # 8*8*2 * 5: 640
    model = keras.Model(x, y)
    assert zoo.count_macs(model) == 18432 + 18432 + 4608 + 8704 + 2048 + 640


def test_nested_models_and_shared_layers_count_each_call():
    import keras
    from keras import layers

    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, layers.Dense(3)(inner_in))
    shared = layers.Dense(4)
    x = keras.Input((4,))
    y = inner(shared(shared(x)))
    assert zoo.count_macs(keras.Model(x, y)) == 16 + 16 + 12


def test_needs_fixed_input_size():
    with pytest.raises(ValueError, match="fixed input size"):
        zoo.count_macs(zoo.build("lenet5", include_top=False, input_shape=(None, None, 1)))


@pytest.mark.parametrize("name, published_gmacs", [
    ("vgg16", 15.47),      # torchvision / ptflops / the usual "15.5 GFLOPs" for VGG-16 at 224
    ("resnet50_v1_5", 4.09),  # torchvision's ResNet-50 (stride in the 3x3): 4.09 GFLOPS (MACs) at 224
    ("resnet50", 3.86),    # paper (stride in the first 1x1), Table 1: "3.8 x 10^9 FLOPs" (multiply-adds)
    ("resnet152", 11.3),   # paper Table 1: 11.3 x 10^9
    ("alexnet_owt", 0.71), # torchvision: 0.71
    ("densenet121", 2.83), # torchvision: 2.83
    ("resnet18", 1.81),    # torchvision: 1.81
])
def test_registry_macs_match_published_figures(name, published_gmacs):
    digits = len(str(published_gmacs).split(".")[1])
    assert round(zoo.get_spec(name).macs / 1e9, digits) == published_gmacs


def test_lenet5_macs_by_hand():
    # conv1 28*28*6*25 + conv2 10*10*16*150 + 400*120 + 120*84 + 84*10
    assert zoo.count_macs(zoo.build("lenet5")) == 117600 + 240000 + 48000 + 10080 + 840
