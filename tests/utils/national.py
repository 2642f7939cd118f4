"""Sample texts for the national language tables (tests and bench/pdu_national_bench.py)."""

from __future__ import annotations

__all__ = ["SENTENCES"]

# A school's reminder, written in each language with characters its tables hold (checked
# below: the plan must be GSM-7 with that language's tables, and come back unchanged).
SENTENCES = {
    "turkish": "Yarın sabah saat dokuzda okulda veli toplantısı var; lütfen çocuğunuzla "
               "birlikte gelin. Görüşmek üzere, İlkokul müdürlüğü.",
    "spanish": "Mañana a las nueve habrá una reunión de padres en la escuela; por favor, "
               "traigan el cuaderno de su hijo. ¡Gracias!",
    "portuguese": "Amanhã às nove horas haverá uma reunião de pais na escola; por favor, "
                  "tragam o caderno do seu filho. Obrigado!",
    # The Bengali tables hold no danda (।): a full stop stands in (see the pairing test).
    "bengali": "আগামীকাল সকাল দশটায় বিদ্যালয়ে অভিভাবক সভা হবে. দয়া করে সময়মতো আসুন.",
    "gujarati": "આવતીકાલે સવારે દસ વાગ્યે શાળામાં વાલી મીટિંગ છે. કૃપા કરીને સમયસર આવો.",
    "hindi": "कल सुबह दस बजे विद्यालय में अभिभावकों की बैठक होगी। कृपया समय पर आएँ।",
    "kannada": "ನಾಳೆ ಬೆಳಿಗ್ಗೆ ಹತ್ತು ಗಂಟೆಗೆ ಶಾಲೆಯಲ್ಲಿ ಪೋಷಕರ ಸಭೆ ಇದೆ. ದಯವಿಟ್ಟು ಸಮಯಕ್ಕೆ ಬನ್ನಿ.",
    "malayalam": "നാളെ രാവിലെ പത്ത് മണിക്ക് സ്കൂളിൽ രക്ഷാകർതൃ യോഗം ഉണ്ട്. ദയവായി സമയത്ത് എത്തുക.",
    "oriya": "ଆସନ୍ତାକାଲି ସକାଳ ଦଶଟାରେ ବିଦ୍ୟାଳୟରେ ଅଭିଭାବକ ସଭା ହେବ। ଦୟାକରି ସମୟରେ ଆସନ୍ତୁ।",
    "punjabi": "ਕੱਲ੍ਹ ਸਵੇਰੇ ਦਸ ਵਜੇ ਸਕੂਲ ਵਿੱਚ ਮਾਪਿਆਂ ਦੀ ਮੀਟਿੰਗ ਹੋਵੇਗੀ। ਕਿਰਪਾ ਕਰਕੇ ਸਮੇਂ ਸਿਰ ਆਓ।",
    "tamil": "நாளை காலை பத்து மணிக்கு பள்ளியில் பெற்றோர் கூட்டம் நடைபெறும். "
             "தயவுசெய்து நேரத்திற்கு வாருங்கள்.",
    "telugu": "రేపు ఉదయం పది గంటలకు పాఠశాలలో తల్లిదండ్రుల సమావేశం ఉంది. దయచేసి సమయానికి రండి.",
    "urdu": "کل صبح دس بجے اسکول میں والدین کی میٹنگ ہوگی۔ براہ کرم وقت پر پہنچیں۔",
}
