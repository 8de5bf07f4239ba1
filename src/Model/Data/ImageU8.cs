namespace MoCo.Model.Data;

/// <summary>A decoded RGB image, height x width x 3 bytes (HWC), row-major.</summary>
public readonly record struct ImageU8(byte[] Pixels, int Height, int Width)
{
    public int ByteCount => Height * Width * 3;
}
