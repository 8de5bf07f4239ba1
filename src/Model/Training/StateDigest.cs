using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>
/// A fingerprint of a replica's whole state (model, key encoder, BN buffers, queue and pointer, optimizer momentum:
/// <see cref="Pretrainer.StateTensors"/>), cheap enough to take at every chunk of steps and exact: one 64-bit checksum
/// per tensor, computed where the tensor lives (on the device) with integer arithmetic only, and a SHA-256 over the
/// names, dtypes, shapes and checksums. A tensor's checksum is Σᵢ vᵢ · mᵢ mod 2⁶⁴, vᵢ its i-th element's exact value
/// as an integer (<see cref="Checksum"/>) and mᵢ = (2i + 1) · 0x9E3779B97F4A7C15, an odd multiplier per position: any change of one element changes it
/// (multiplying by an odd number is a bijection mod 2⁶⁴), so does moving a value to another position, and integer sums
/// wrap the same way in any order, so the checksum does not depend on threads or devices. Two states with equal digests
/// are bit for bit equal except for a collision (about 2⁻⁶⁴ per tensor for unrelated changes).
/// </summary>
/// <param name="Digest">SHA-256 (hex) of every tensor's name, dtype, shape and checksum, in state order.</param>
/// <param name="Checksums">Each tensor's checksum, in state order (to name the first tensor that differs).</param>
public sealed record StateDigest(string Digest, IReadOnlyList<long> Checksums)
{
    private const long Golden = unchecked((long)0x9E3779B97F4A7C15UL);

    /// <summary>The digest of <paramref name="state"/> (names with tensors, in a fixed order).</summary>
    public static StateDigest Compute(IReadOnlyList<KeyValuePair<string, Tensor>> state)
    {
        using var scope = NewDisposeScope();
        var checksums = new long[state.Count];
        var text = new StringBuilder();
        for (int i = 0; i < state.Count; i++)
        {
            var (name, t) = state[i];
            checksums[i] = Checksum(t);
            text.Append(name).Append(' ').Append(t.dtype).Append(' ').Append(string.Join("x", t.shape)).Append(' ')
                .Append(checksums[i].ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        return new StateDigest(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()))), checksums);
    }

    /// <summary>
    /// The 64-bit checksum of one tensor, computed on its device. TorchSharp cannot reinterpret a tensor's bits, so a
    /// floating-point element enters as its exact value in integers: frexp's mantissa scaled to an integer (exact: 24
    /// bits for float32 and bfloat16, which widens exactly, 53 for float64) and its exponent; integer elements enter as
    /// they are. Two elements give the same integer exactly when their values are equal (+0 and −0 count as equal; every
    /// NaN enters as one value).
    /// </summary>
    public static long Checksum(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var flat = tensor.detach().contiguous().flatten();
        if (flat.numel() == 0)
        {
            return 0;
        }

        Tensor values;
        if (flat.is_floating_point())
        {
            bool wide = flat.dtype == ScalarType.Float64;
            var exact = wide ? flat : flat.to(ScalarType.Float32); // bfloat16 and float16 widen exactly
            var (mantissa, exponent) = torch.frexp(exact);
            // mantissa in (-1, -0.5] ∪ [0.5, 1): times 2^24 (2^53) an integer exactly; the exponent fits 12 bits
            using Scalar unit = wide ? 9007199254740992.0 : 16777216.0, shift = 4096, bias = 2048; // held (HeldScalar)
            var scaled = mantissa.mul(unit).to(ScalarType.Int64);
            values = scaled.mul_(shift).add_(exponent.to(ScalarType.Int64).add_(bias, HeldScalar.One), HeldScalar.One);
            values = torch.where(exact.isnan(), torch.tensor(long.MinValue, device: values.device), values);
        }
        else
        {
            values = flat.to(ScalarType.Int64);
        }

        using Scalar two = 2, golden = Golden; // held (HeldScalar)
        var multipliers = arange(values.numel(), dtype: ScalarType.Int64, device: values.device).mul_(two).add_(HeldScalar.One, HeldScalar.One).mul_(golden);
        // Out of place: for an int64 tensor, values may be the caller's own storage (the queue pointer).
        return values.mul(multipliers).sum().item<long>();
    }

    /// <summary>The index of the first tensor whose checksum differs from <paramref name="other"/>'s, or -1.</summary>
    public int FirstDifference(IReadOnlyList<long> other)
    {
        for (int i = 0; i < Math.Min(Checksums.Count, other.Count); i++)
        {
            if (Checksums[i] != other[i])
            {
                return i;
            }
        }

        return Checksums.Count == other.Count ? -1 : Math.Min(Checksums.Count, other.Count);
    }
}
