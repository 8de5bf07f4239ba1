using static TorchSharp.torch;

namespace MoCo.Model.Nn;

/// <summary>
/// A bias-free 2-D convolution that hands libtorch only shapes its CPU kernels compute correctly on every x86 machine.
///
/// libtorch 2.10 ships oneDNN 3.7.1, which sizes its kernels' blocking from what CPUID says about the caches and the
/// cores. Where a hypervisor zeroes those CPUID leaves (4, 0xB, 0x8000001D, 0x8000001E: the cloud machines this
/// project runs on, Zen 5 with AVX-512), the blocking comes out wrong: measured there, stride-1 backward-data is
/// wrong or NaN for channel counts that are not a multiple of the SIMD block (8 on AVX2, 16 on AVX-512; the
/// padding lanes are read though never written), the forward too for 20 or 24 channels in and out and in bfloat16
/// for fewer than 16 output channels, 3x3 stride-2 backward-data for 48, 80, 112, ... input channels, and a 1x1
/// stride-2 backward-data with 512 input and 1024 output channels (ResNet-50's downsampling) stops the process
/// with SIGFPE (an integer division by zero in brgemm_convolution_bwd_utils::est_eff_1x1). The same binary under an
/// emulated CPUID that reports caches and cores (valgrind) computes all of them correctly, as does libtorch 1.13.
/// tests/MoCo.Model.Tests/ConvolutionNumericsTests.cs holds the shapes; the numerical self-check
/// (Diagnostics.NumericsCheck, <c>moco doctor</c>) repeats the network's own at start.
///
/// The workaround keeps the math and changes the shapes: channel counts are padded with zeros to 16, or to a
/// multiple of 32 above 16 (the weight gets zero filters or zero input channels, the extra outputs are dropped);
/// input channels of an image stem (at most 4, a kernel wider than 1x1, no input gradient) stay as they are; and a
/// 1x1 convolution with stride s is the 1x1 stride-1 convolution of every s-th pixel. Zeros add nothing to any sum,
/// so the convolution and both gradients are the same. ResNets whose width is a multiple of 32 pay nothing but the
/// strided 1x1 slices.
/// </summary>
public static class AlignedConvolution
{
    /// <summary>The widest oneDNN channel block among the x86 ISAs: channel counts up to it are padded to it.</summary>
    public const long ChannelAlignment = 16;

    /// <summary>
    /// Input channels up to this many (an image's) are left as they are when the kernel is wider than 1x1 and no gradient
    /// flows back to the input: an image stem (its kernels compute those correctly, and padding 3 channels to 16 would
    /// cost five times the stem's work).
    /// </summary>
    public const long SmallInputChannels = 4;

    /// <summary><c>conv2d(input, weight, stride, padding)</c> with square stride and padding, computed on safe shapes.</summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, long stride, long padding) => Conv2d(input, weight, stride, padding, null);

    /// <summary>
    /// <c>conv2d(input, weight, bias, stride, padding)</c>: as <see cref="Conv2d(Tensor, Tensor, long, long)"/> with a bias
    /// of one value per output channel (shape [out]) added by the convolution's own kernel, not by a pass of its own.
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, long stride, long padding, Tensor? bias)
    {
        long outChannels = weight.shape[0];
        long inChannels = weight.shape[1];
        long kernel = weight.shape[2];
        bool inputGradient = input.requires_grad && is_grad_enabled();
        if (input.dtype == ScalarType.Float64)
        {
            var reference = Reference(input, weight, stride, padding);
            return bias is null ? reference : reference.add_(bias.view(1, -1, 1, 1), HeldScalar.One);
        }

        LayerCallRecorder.Record("conv2d", input, weight, stride, padding, inputGradient);
        bool imageStem = inChannels <= SmallInputChannels && kernel > 1 && !inputGradient;
        long outPad = Padding(outChannels);
        long inPad = imageStem ? 0 : Padding(inChannels);
        bool subsample = kernel == 1 && weight.shape[3] == 1 && stride > 1 && padding == 0;
        if (outPad == 0 && inPad == 0 && !subsample)
        {
            return nn.functional.conv2d(input, weight, bias, strides: [stride, stride], padding: [padding, padding]);
        }

        using var scope = NewDisposeScope();
        var x = input;
        if (subsample)
        {
            // every stride-th pixel from the first: the pixels a 1x1 kernel with this stride and no padding reads
            x = x.slice(2, 0, x.shape[2], stride).slice(3, 0, x.shape[3], stride);
            stride = 1;
        }
        // F.pad lists the last dimension first: (kw, kw, kh, kh, in, in, out, out)
        var w = outPad == 0 && inPad == 0 ? weight : nn.functional.pad(weight, [0, 0, 0, 0, 0, inPad, 0, outPad]);
        if (inPad != 0)
        {
            x = nn.functional.pad(x, [0, 0, 0, 0, 0, inPad]);
        }
        var b = bias is null || outPad == 0 ? bias : nn.functional.pad(bias, [0, outPad]);
        var y = nn.functional.conv2d(x, w, b, strides: [stride, stride], padding: [padding, padding]);
        if (outPad != 0)
        {
            y = y.narrow(1, 0, outChannels).contiguous();
        }
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The convolution as im2col and a matrix product, the reference the numerical self-check compares with (in float64):
    /// no convolution kernel of libtorch's is involved (and none of its float64 fallbacks, which log a warning per call
    /// on CPUs NNPACK does not support).
    /// </summary>
    public static Tensor Reference(Tensor input, Tensor weight, long stride, long padding)
    {
        using var scope = NewDisposeScope();
        long n = input.shape[0];
        long outChannels = weight.shape[0];
        long kh = weight.shape[2];
        long kw = weight.shape[3];
        long oh = (input.shape[2] + 2 * padding - kh) / stride + 1;
        long ow = (input.shape[3] + 2 * padding - kw) / stride + 1;
        var columns = nn.functional.unfold(input, (kh, kw), padding: (padding, padding), stride: (stride, stride)); // n x (c·kh·kw) x (oh·ow)
        var y = weight.reshape(outChannels, -1).matmul(columns);                                                      // n x out x (oh·ow)
        return y.view(n, outChannels, oh, ow).MoveToOuterDisposeScope();
    }

    /// <summary>How many zero channels make <paramref name="channels"/> safe: up to 16 when fewer, else up to a multiple of 32.</summary>
    public static long Padding(long channels)
    {
        long block = channels <= ChannelAlignment ? ChannelAlignment : 2 * ChannelAlignment;
        return (block - channels % block) % block;
    }
}
