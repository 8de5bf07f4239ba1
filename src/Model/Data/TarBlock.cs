namespace MoCo.Model.Data;

/// <summary>The fields of a 512-byte tar header block that the guards and the shard scanner read themselves.</summary>
internal static class TarBlock
{
    /// <summary>The size of a header block and the unit of a tar's layout.</summary>
    public const int Bytes = 512;

    public const int ChecksumOffset = 148;

    public const int ChecksumBytes = 8;

    /// <summary>An octal size field (digits, then NULs or spaces) or a positive base-256 one; false for anything else.</summary>
    public static bool TryParseSize(ReadOnlySpan<byte> field, out long size)
    {
        size = 0;
        if (field[0] == 0x80)
        {
            // base-256: big-endian in the remaining bytes; anything beyond a long is "more than any limit"
            for (int i = 1; i < field.Length; i++)
            {
                if (size > (long.MaxValue >> 8))
                {
                    size = long.MaxValue;
                    return true;
                }
                size = (size << 8) | field[i];
            }
            return true;
        }
        return TryParseOctal(field, out size);
    }

    public static bool TryParseOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        int i = 0;
        while (i < field.Length && field[i] == (byte)' ')
        {
            i++;
        }
        int digits = 0;
        for (; i < field.Length && field[i] is >= (byte)'0' and <= (byte)'7'; i++, digits++)
        {
            value = (value << 3) | (long)(field[i] - '0');
        }
        for (; i < field.Length; i++)
        {
            if (field[i] is not (0 or (byte)' '))
            {
                return false;
            }
        }
        return digits > 0;
    }

    /// <summary>The header checksum: the sum of the block's bytes with the checksum field read as spaces (unsigned, or signed as old tars wrote it).</summary>
    public static bool ChecksumMatches(ReadOnlySpan<byte> block)
    {
        if (!TryParseOctal(block.Slice(ChecksumOffset, ChecksumBytes), out long stored))
        {
            return false;
        }
        long unsigned = 0;
        long signed = 0;
        for (int i = 0; i < Bytes; i++)
        {
            byte b = i is >= ChecksumOffset and < ChecksumOffset + ChecksumBytes ? (byte)' ' : block[i];
            unsigned += b;
            signed += (sbyte)b;
        }
        return stored == unsigned || stored == signed;
    }
}
